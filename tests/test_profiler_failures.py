"""Failure is contained: a script that raises, hangs, eats memory or leaves workers behind never
takes the advisor down, leaves no process and writes no profile."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from advisor.cli import main
from advisor.errors import DomainFailure
from advisor.profiler import profile_script

LOOP = """
import torch
model = torch.nn.Linear(8, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(1000):
    loss = model(torch.randn(4, 8)).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    {inside}
"""


def write(tmp_path: Path, name: str, body: str) -> str:
    (tmp_path / name).write_text(textwrap.dedent(body))
    return name


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_script_that_raises_exits_1_with_its_error_and_what_was_measured(tmp_path, monkeypatch,
                                                                         capsys):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "boom.py", LOOP.format(inside="if step == 5: raise ValueError('bad batch')"))
    old = tmp_path / "profiles" / "boom.json"  # an earlier profile stays as it was
    old.parent.mkdir()
    old.write_text('{"old": true}')
    code = main(["profile", "boom.py", "--steps", "20", "--warmup", "2", "--json"])
    assert code == 1
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert "ValueError" in doc["error"] and "bad batch" in doc["error"]
    assert "boom.py:10" in doc["error"]  # the line in the user's script
    assert doc["measured_so_far"]["optimizer_steps_seen"] == 6  # steps 0..5 ran
    assert doc["measured_so_far"]["steps_measured"] == 4  # 2 warm-up (the 2nd counted)
    assert doc["measured_so_far"]["flops_per_step"] > 0
    assert "Traceback" not in out.err
    assert old.read_text() == '{"old": true}'
    assert os.listdir(old.parent) == ["boom.json"]  # no partial or temporary file


def test_hanging_script_is_killed_at_the_timeout_with_its_workers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pids, main_pid = tmp_path / "pids", tmp_path / "main_pid"
    write(tmp_path, "hang.py", f"""
        import os, time, torch
        from torch.utils.data import DataLoader, TensorDataset
        def init(_):
            with open({str(pids)!r}, "a") as fh:
                fh.write(f"{{os.getpid()}}\\n")
        with open({str(main_pid)!r}, "w") as fh:
            fh.write(str(os.getpid()))
        data = TensorDataset(torch.randn(64, 8))
        loader = DataLoader(data, batch_size=4, num_workers=2, worker_init_fn=init)
        it = iter(loader)
        next(it)
        while len(open({str(pids)!r}).read().split()) < 2:
            time.sleep(0.1)
        print("workers up", flush=True)
        time.sleep(600)
    """)
    with pytest.raises(DomainFailure) as info:
        profile_script("hang.py", timeout_s=40)
    # stopped early for showing no training step in half the timeout (not by the 600 s sleep
    # ending or by an error), and says so, naming --command
    assert "no training step was seen within 20 s" in str(info.value)
    assert "no backward" in str(info.value)  # what was seen: no forward of a model either
    assert "--command" in str(info.value)
    assert "raise --timeout, or lower" not in str(info.value)
    assert "workers up" in info.value.details["output_tail"]
    assert info.value.details["reason"] == "no_steps"
    worker_pids = [int(x) for x in pids.read_text().split()]
    assert len(worker_pids) == 2
    assert not [p for p in worker_pids if alive(p)]  # no orphaned DataLoader workers
    assert not alive(int(main_pid.read_text()))  # nor the script itself


def test_memory_hog_is_stopped_and_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "hog.py", """
        import torch
        hoard = []
        while True:
            hoard.append(torch.ones(25_000_000))  # 100 MB at a time
    """)
    code = main(["profile", "hog.py", "--memory-limit-gb", "1", "--timeout", "60", "--json"])
    assert code == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["reason"] == "memory_limit"
    assert "memory" in doc["error"]
    assert doc["measured_so_far"]["peak_rss_bytes"] > 2**30
    assert not (tmp_path / "profiles").exists()


def test_script_without_optimizer_steps_is_a_domain_failure(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "noop.py", "print('hello')\n")
    assert main(["profile", "noop.py"]) == 1
    err = capsys.readouterr().err
    assert "without an optimizer step" in err and "--command" in err


def test_script_exiting_with_an_error_status(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "bad_args.py", "import argparse\nargparse.ArgumentParser().parse_args()\n")
    assert main(["profile", "bad_args.py", "--", "--nope"]) == 1
    assert "sys.exit(2)" in capsys.readouterr().err


def test_missing_script_is_bad_input(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "train.py", "")
    assert main(["profile", "trian.py"]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "train.py" in err
