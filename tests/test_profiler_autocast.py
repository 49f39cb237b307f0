"""A script written for the GPU (`torch.autocast("cuda", dtype=bfloat16)`) profiled on a CPU:
torch disables that autocast here, but the profile must record what the script asks for, so that
the predictor uses bf16 tensor cores and gates GPUs below capability 8.0.

The same script is a click command whose loop steps with a closure (``opt.step(closure)``), so
one profile also checks that click parses the script's own arguments and that a closure step of
a plain optimizer is one step with the batch taken from the model's input."""

from __future__ import annotations

import json

from advisor.cli import main

SCRIPT = """
import click
import torch, torch.nn as nn

@click.command()
@click.option("--batch-size", default=4)
def train(batch_size):
    m = nn.Linear(64, 64)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    data = torch.randn(batch_size, 64)
    for i in range(30):
        def closure():
            opt.zero_grad()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = m(data).sum()
            loss.backward()
            return loss
        opt.step(closure)

if __name__ == "__main__":
    train()
"""


def test_requested_cuda_autocast_is_recorded_and_gates_old_gpus(tmp_path, capsys):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "p.json"
    assert main(["profile", str(script), "--steps", "3", "--warmup", "1", "-o", str(out),
                 "--json", "--", "--batch-size", "12"]) == 0
    capsys.readouterr()
    profile = json.loads(out.read_text())
    precision = profile["precision"]
    assert precision["autocast_requested"] == {"cuda": "bfloat16"}
    assert precision["autocast_dtype"] == "bfloat16"
    # click parsed the script's arguments; a closure step of SGD is one step of one closure
    assert profile["steps_measured"] == 3
    assert profile["training_loop"] == {"style": "closure", "closure_calls_per_step": 1}
    assert profile["batch_size"] == 12  # from the model's input: there is no DataLoader
    assert profile["flops_per_step"] == 2 * 12 * 64 * 64 * 2  # forward + weight grad
    assert profile["parameters"] == 64 * 64 + 64 and profile["micro_batches_per_step"] == 1
    assert main(["fit", str(out), "--json"]) == 0
    rows = {r["gpu"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["A100-SXM4-80GB"]["runnable"] is True
    assert rows["RTX-2080-Ti"]["runnable"] is False   # no bf16 below capability 8.0
