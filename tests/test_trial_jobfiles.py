"""The job files `advisor recommend` writes, run by `advisor trial` (issue 13, "Done when"): the
cat/dog CNN completes, and after an eviction mid-training it resumes from its checkpoint and the
model comes back. Uses the shipped profile; the inputs the submit file names are made here the
way the written run.sh expects them (a small image set packed with relative paths)."""

from __future__ import annotations

import json
import re
import shutil
import sys
import tarfile
from pathlib import Path

import pytest

from advisor.cli import main
from advisor.emit.common import CHECKPOINT_DIR, EVICTED_EXIT_CODE, OUTPUT_DIR
from advisor.trial import runner as trial_runner

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def _inputs_for(job_dir: Path, scratch: Path) -> None:
    """Put what transfer_input_files names next to the submit file, as a user would."""
    sub = (job_dir / "cnn_catdog.sub").read_text()
    entries = re.search(r"^transfer_input_files\s*=\s*(.+)$", sub, re.M)
    assert entries, "the submit file sends no inputs"
    run_sh = (job_dir / "run.sh").read_text()
    data_dir = re.search(r"--data-dir\s+(\S+)", run_sh)
    for entry in (e.strip() for e in entries.group(1).split(",")):
        if (job_dir / entry).exists():
            continue
        if entry.endswith(".py"):
            shutil.copy(EXAMPLES / entry, job_dir / entry)
        elif entry.endswith((".tar.gz", ".tgz")):
            assert data_dir, "run.sh unpacks an archive but names no --data-dir"
            sys.path.insert(0, str(EXAMPLES))
            try:
                from make_catdog_images import make_images
            finally:
                sys.path.remove(str(EXAMPLES))
            folder = data_dir.group(1).strip("'\"")
            make_images(scratch / folder, per_class=16, size=32)   # one batch of 32 per epoch
            with tarfile.open(job_dir / entry, "w:gz") as tar:
                tar.add(scratch / folder, arcname=folder)
        else:
            pytest.fail(f"the test does not know how to make input {entry!r}")


@pytest.fixture(scope="module")
def job_dir(tmp_path_factory) -> Path:
    """`advisor recommend` for a long training (so it checkpoints through the wrapper)."""
    root = tmp_path_factory.mktemp("catdog")
    out = root / "catdog-job"
    assert main(["recommend", str(REPO / "profiles" / "cnn_catdog.json"), "--steps", "30000000",
                 "--pool", "chtc", "-o", str(out)]) == 0
    _inputs_for(out, root / "data")
    return out


def _trial(job_dir: Path, capsys, *options: str) -> dict:
    code = main(["trial", str(job_dir / "cnn_catdog.sub"), "--json", *options])
    doc = json.loads(capsys.readouterr().out)
    assert code == doc["exit_status"]
    return doc


def test_written_job_completes_and_the_model_comes_back(job_dir: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(trial_runner, "find_apptainer", lambda: None)   # the same on every machine
    doc = _trial(job_dir, capsys)
    assert doc["outcome"] == "completed", doc["stderr_tail"]
    assert "Apptainer is not installed" in doc["container"]
    model = job_dir / "trial-output" / OUTPUT_DIR / "cnn_catdog.pt"
    assert model.is_file()
    torch = pytest.importorskip("torch")
    assert any(k.startswith("head.") for k in torch.load(model, map_location="cpu"))


def test_written_job_resumes_from_its_checkpoint_after_an_eviction(job_dir: Path, capsys,
                                                                   monkeypatch) -> None:
    monkeypatch.setattr(trial_runner, "find_apptainer", lambda: None)
    # Evicted as soon as the first epoch's checkpoint exists: mid-training on any machine speed
    # (a fixed --evict-after could fall before the first checkpoint on a busy machine).
    doc = _trial(job_dir, capsys, "--evict-on-file", f"{CHECKPOINT_DIR}/checkpoint.pt",
                 "--grace", "120")
    assert doc["outcome"] == "completed", doc["stderr_tail"]
    assert doc["starts"] == 2 and len(doc["evictions"]) == 1
    ev = doc["evictions"][0]
    # the wrapper passed the SIGTERM on; the program saved and stopped; the wrapper did not exit 85
    assert ev["ended_by"] == "SIGTERM" and ev["exit_code"] == EVICTED_EXIT_CODE
    assert CHECKPOINT_DIR in ev["kept_at_eviction"]
    stdout = next((job_dir / "trial-output").glob("*.out")).read_text()
    assert re.search(r"resumed from checkpoints/checkpoint\.pt at epoch [1-9]", stdout), stdout
    assert (job_dir / "trial-output" / OUTPUT_DIR / "cnn_catdog.pt").is_file()


def test_checkpoint_every_shortens_the_written_wrappers_interval(job_dir: Path, tmp_path: Path,
                                                                 capsys) -> None:
    """The written checkpoint_wrapper.sh around a fast pretend training (tests/fixtures/trial):
    --checkpoint-every makes it stop the program and exit 85; the job resumes in place."""
    folder = tmp_path / "wrapped"
    shutil.copytree(REPO / "tests" / "fixtures" / "trial", folder)
    shutil.copy(job_dir / "checkpoint_wrapper.sh", folder)
    (folder / "run.sh").write_text('#!/bin/bash\nexec ./train.py "$@"\n')
    (folder / "run.sh").chmod(0o755)   # as recommend writes it: file transfer keeps the mode
    (folder / "job.sub").write_text(
        "executable = checkpoint_wrapper.sh\narguments = --steps 10 --step-s 0.5\n"
        "transfer_input_files = run.sh, train.py\ncheckpoint_exit_code = 85\n"
        "transfer_checkpoint_files = checkpoints\nwhen_to_transfer_output = ON_EXIT_OR_EVICT\n"
        "transfer_output_files = output, checkpoints\nrequest_memory = 512MB\nqueue\n")
    code = main(["trial", str(folder / "job.sub"), "--checkpoint-every", "2", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["outcome"] == "completed", (doc["exit_code"], doc["stderr_tail"], doc["notes"])
    assert doc["checkpoint_restarts"] >= 1 and doc["starts"] == 1   # 5 s of work, 2 s at a time
    starts = json.loads((folder / "trial-output" / OUTPUT_DIR / "model.json").read_text())["starts"]
    assert len(starts) == doc["checkpoint_restarts"] + 1 and starts == sorted(set(starts))
