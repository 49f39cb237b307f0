"""A script written for the GPU (`torch.autocast("cuda", dtype=bfloat16)`) profiled on a CPU:
torch disables that autocast here, but the profile must record what the script asks for, so that
the predictor uses bf16 tensor cores and gates GPUs below capability 8.0."""

from __future__ import annotations

import json

from advisor.cli import main

SCRIPT = """
import torch, torch.nn as nn
m = nn.Linear(64, 64); opt = torch.optim.SGD(m.parameters(), lr=0.1)
for i in range(30):
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = m(torch.randn(32, 64)).sum()
    loss.backward(); opt.step(); opt.zero_grad()
"""


def test_requested_cuda_autocast_is_recorded_and_gates_old_gpus(tmp_path, capsys):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "p.json"
    assert main(["profile", str(script), "--steps", "4", "--warmup", "2", "-o", str(out), "--json"]) == 0
    capsys.readouterr()
    precision = json.loads(out.read_text())["precision"]
    assert precision["autocast_requested"] == {"cuda": "bfloat16"}
    assert precision["autocast_dtype"] == "bfloat16"
    assert main(["fit", str(out), "--json"]) == 0
    rows = {r["gpu"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["A100-SXM4-80GB"]["runnable"] is True
    assert rows["RTX-2080-Ti"]["runnable"] is False   # no bf16 below capability 8.0
