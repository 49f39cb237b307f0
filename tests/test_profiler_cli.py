"""`advisor profile` on the command line: argument splitting, JSON output, the generic command
mode and the batch-size sweep."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from advisor.cli import build_parser, main
from advisor.errors import InputError
from advisor.profiler.scaling import batch_args, fit_scaling, parse_batch_sizes

TINY = """
import argparse
import torch
p = argparse.ArgumentParser()
p.add_argument("--batch-size", type=int, default=8)
p.add_argument("--width", type=int, default=64)
a = p.parse_args()
model = torch.nn.Sequential(torch.nn.Linear(32, a.width), torch.nn.ReLU(),
                            torch.nn.Linear(a.width, 4))
opt = torch.optim.Adam(model.parameters())
for _ in range(200):
    x = torch.randn(a.batch_size, 32)
    loss = model(x).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""


def parse(argv):
    return build_parser().parse_args(argv)


def test_options_before_double_dash_are_ours_after_it_the_scripts():
    args = parse(["profile", "train.py", "--steps", "5", "--json", "--", "--steps", "9", "-o",
                  "x"])
    assert args.script == "train.py" and args.steps == 5 and args.json
    assert args.script_args == ["--steps", "9", "-o", "x"]
    assert args.output is None


def test_without_double_dash_unknown_arguments_go_to_the_script():
    args = parse(["profile", "--warmup", "1", "train.py", "--epochs", "2", "data/"])
    assert args.warmup == 1
    assert args.script_args == ["--epochs", "2", "data/"]


def test_unknown_option_before_double_dash_is_bad_usage(capsys):
    with pytest.raises(SystemExit) as info:
        parse(["profile", "train.py", "--stepz", "3", "--", "--lr", "1"])
    assert info.value.code == 2
    assert "--stepz" in capsys.readouterr().err


def test_profile_writes_the_file_and_prints_one_json_document(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.py").write_text(TINY)
    code = main(["profile", "tiny.py", "--steps", "3", "--warmup", "1", "--json", "--",
                 "--batch-size", "16"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    path = tmp_path / "profiles" / "tiny.json"
    assert doc["profile_path"] == str(Path("profiles") / "tiny.json") or \
        Path(doc["profile_path"]).resolve() == path.resolve()
    saved = json.loads(path.read_text())
    assert saved["batch_size"] == 16 and saved["args"] == ["--batch-size", "16"]
    assert saved["steps_measured"] == 3 and saved["flops_counted_on_step"] == 2
    assert saved["script"] == "tiny.py"
    assert "profile_path" not in saved
    text = path.read_text()
    for secret in ("HOME", "PATH=", str(Path.home()) + "/"):
        assert secret not in text  # no environment, no home path


def test_command_mode_measures_the_task_as_a_whole(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "work.py").write_text(textwrap.dedent("""
        import time
        t = time.process_time()
        while time.process_time() - t < 0.3:
            pass
        junk = bytearray(60 * 2**20)
        with open("out.bin", "wb") as fh:
            fh.write(b"x" * 5_000_000)
    """))
    code = main(["profile", "--command", f"{sys.executable} work.py", "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    task = doc["task"]
    assert doc["mode"] == "command"
    assert task["cpu_s"] >= 0.25
    assert task["wall_s"] >= task["cpu_s"] * 0.5
    assert task["bytes_written"] >= 5_000_000
    assert task["peak_rss_bytes"] >= 60 * 2**20
    assert (tmp_path / "profiles" / "work.json").is_file()


def test_command_that_fails_is_exit_1(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["profile", "--command", f"{sys.executable} -c 'raise SystemExit(3)'"]) == 1
    assert "exited with status 3" in capsys.readouterr().err
    assert not (tmp_path / "profiles").exists()


@pytest.mark.slow  # three profiles; the fitting itself: test_scaling_helpers
def test_batch_size_sweep_fits_memory_and_time(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.py").write_text(TINY)
    code = main(["profile", "tiny.py", "--steps", "2", "--warmup", "1", "--batch-sizes",
                 "64,256,1024", "--batch-arg", "--batch-size {bs}", "--json", "--", "--width",
                 "256"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    scaling = doc["batch_scaling"]
    assert [p["batch_size"] for p in scaling["points"]] == [64, 256, 1024]
    mem = [p["peak_device_bytes"] for p in scaling["points"]]
    assert mem[0] < mem[1] < mem[2]
    assert scaling["memory_fit"]["bytes_per_sample"] > 0
    assert scaling["memory_fit"]["r2"] > 0.99
    rows = {r["gpu"]: r for r in scaling["max_batch_by_gpu"]}
    assert len(rows) >= 5
    by_memory = sorted(rows.values(), key=lambda r: r["memory_gb"])
    sizes = [r["max_batch_size"] for r in by_memory]
    assert sizes == sorted(sizes) and sizes[0] > 1024


def test_scaling_helpers():
    assert parse_batch_sizes("32, 8,16") == [8, 16, 32]
    with pytest.raises(InputError):
        parse_batch_sizes("8")
    with pytest.raises(InputError):
        parse_batch_sizes("8,x")
    assert batch_args("--bs={bs} --accum 1", 8) == ["--bs=8", "--accum", "1"]
    with pytest.raises(InputError):
        batch_args("--batch-size", 8)
    fit = fit_scaling([{"batch_size": b, "peak_device_bytes": 1000 + 10 * b,
                        "step_time_s": 0.01 * b} for b in (8, 16, 32)],
                      gpus=[("small", 1e-6), ("big", 1.0)])
    assert fit["memory_fit"]["bytes_per_sample"] == pytest.approx(10)
    rows = {r["gpu"]: r["max_batch_size"] for r in fit["max_batch_by_gpu"]}
    assert rows["small"] == 0
    assert rows["big"] == (2**30 - 512 * 2**20 - 1000) // 10
