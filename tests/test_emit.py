"""The HTCondor submit file and the checkpoint wrapper, read back by HTCondor's own parser."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import htcondor2
import pytest

from advisor.emit import WRAPPER_NAME, render_checkpoint_wrapper, render_htcondor, write_files
from advisor.errors import InputError
from advisor.request import DataFile, JobSpec, Request
from simulator.pool import load_pool

CHTC = load_pool("chtc")
OSPOOL = load_pool("ospool")

CHECKPOINTING = Request(request_cpus=4, request_memory_mb=6144, request_disk_mb=20480,
                        request_gpus=1, gpus_minimum_capability=8.0, gpus_minimum_memory_mb=20480,
                        job_length="short", is_resumable=True, checkpoint_interval_minutes=240)
PLAIN = Request(request_cpus=2, request_memory_mb=3000, request_disk_mb=5000, request_gpus=1,
                job_length="medium")
JOB = JobSpec(name="train-resnet", executable="train.sh", arguments="--epochs 10",
              inputs=(DataFile("code.tar.gz", 0.05), DataFile("data/imagenet.tar", 25.0),
                      DataFile("big.tar", 60.0), DataFile("huge.tar", 500.0)),
              outputs=("results.tar.gz",), container_image="docker://pytorch/pytorch:2.5.1",
              queue=10, checkpoint_files=("checkpoint.pt", "state.json"),
              extra={"reasons": {"request_memory": "peak host memory 4.1 GB (advisor profile) + 50%"},
                     "user": "bbadger"})


def parse(text: str) -> htcondor2.Submit:
    return htcondor2.Submit(text)


def assignments(text: str) -> dict[str, str]:
    """Every `key = value` line (comments and the queue line left out), refusing duplicates."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#") or line.lower().startswith("queue"):
            continue
        key, _, value = line.partition("=")
        assert key.strip().lower() not in out, f"{key.strip()} written twice"
        out[key.strip().lower()] = value.strip()
    return out


def test_checkpointing_chtc_submit_file_every_line():
    text = render_htcondor(CHECKPOINTING, JOB, CHTC)
    sub = parse(text)
    assert sub["executable"] == WRAPPER_NAME
    assert sub["arguments"] == '"--epochs 10"'
    assert sub["container_image"] == "docker://pytorch/pytorch:2.5.1"
    assert sub["request_cpus"] == "4"
    assert sub["request_memory"] == "6144MB"
    assert sub["request_disk"] == "20GB"
    assert sub["request_gpus"] == "1"
    assert sub["gpus_minimum_capability"] == "8.0"
    assert sub["gpus_minimum_memory"] == "20480MB"
    assert sub["MY.GPUJobLength"] == '"short"'
    assert sub["MY.is_resumable"] == "true"
    assert sub["checkpoint_exit_code"] == "85"
    assert sub["transfer_checkpoint_files"] == "checkpoint.pt, state.json"
    assert sub["should_transfer_files"] == "YES"
    # The checkpoint written on SIGTERM survives an eviction only this way (docs/DOMAIN.md).
    assert sub["when_to_transfer_output"] == "ON_EXIT_OR_EVICT"
    for key in ("log", "output", "error"):
        assert "$(Cluster)_$(Process)" in sub[key]
    inputs = [s.strip() for s in sub["transfer_input_files"].split(",")]
    # The real program travels with the wrapper; each input by its size (CHTC data rules).
    assert inputs == ["train.sh", "code.tar.gz", "osdf:///chtc/staging/bbadger/imagenet.tar",
                      "file:///staging/bbadger/big.tar"]
    assert sub["requirements"] == "(HasCHTCStaging == true)"
    assert sub["transfer_output_files"] == "results.tar.gz, checkpoint.pt, state.json"
    assert sub.getQArgs() == "10"
    # The 500 GB file is not transferred; a comment sends the researcher to a facilitator.
    assert "huge.tar" not in sub["transfer_input_files"]
    assert re.search(r"#.*huge\.tar.*facilitator", text)
    # The measurement behind request_memory is stated right above it.
    assert re.search(r"# peak host memory 4\.1 GB.*\nrequest_memory = 6144MB", text)
    # Every command is written once (Submit() would silently keep the last).
    assert set(assignments(text)) == {k.lower().replace("my.", "+") for k in sub.keys()}


def test_units_are_always_written():
    for request in (CHECKPOINTING, PLAIN):
        sub = parse(render_htcondor(request, JOB, CHTC))
        assert re.fullmatch(r"\d+MB", sub["request_memory"])
        assert re.fullmatch(r"\d+(MB|GB)", sub["request_disk"]), "a bare request_disk is KiB"
    # 5000 MB is not a whole number of GB: written in MB, not rounded.
    assert parse(render_htcondor(PLAIN, JOB, CHTC))["request_disk"] == "5000MB"


def test_no_checkpoint_lines_without_checkpointing():
    text = render_htcondor(PLAIN, JOB, CHTC)
    sub = parse(text)
    assert sub["executable"] == "train.sh"
    for key in ("checkpoint_exit_code", "transfer_checkpoint_files", "MY.is_resumable",
                "gpus_minimum_capability", "gpus_minimum_memory"):
        assert key not in sub
    assert sub["MY.GPUJobLength"] == '"medium"'
    assert not sub["transfer_input_files"].startswith("train.sh")


def test_ospool_tier_attribute_and_osdf():
    request = Request(request_gpus=1, job_length="Long", request_memory_mb=8192)
    job = JobSpec(name="infer", inputs=(DataFile("weights.bin", 4.0), DataFile("x.txt", 0.001)))
    sub = parse(render_htcondor(request, job, OSPOOL))
    assert sub["MY.JobDurationCategory"] == '"Long"'
    assert "MY.GPUJobLength" not in sub
    assert sub["transfer_input_files"] == "osdf:///ospool/ap40/data/USER/weights.bin, x.txt"
    assert "requirements" not in sub
    assert sub.getQArgs() == ""


def test_default_tier_and_cpu_only_request():
    sub = parse(render_htcondor(Request(request_gpus=0), JobSpec(name="cpu"), CHTC))
    assert sub["MY.GPUJobLength"] == '"medium"'
    assert "request_gpus" not in sub


def test_queue_from_items_file():
    job = JobSpec(name="sweep", extra={"items_file": "params.txt"})
    sub = parse(render_htcondor(PLAIN, job, CHTC))
    assert sub.getQArgs() == "item from params.txt"


def test_bad_tier_and_bad_request_are_input_errors():
    with pytest.raises(InputError, match="Medium, Long"):
        render_htcondor(Request(job_length="short"), JOB, OSPOOL)
    with pytest.raises(InputError, match="request_cpus"):
        render_htcondor(Request(request_cpus=0), JOB, CHTC)
    with pytest.raises(InputError, match="checkpoint_files"):
        render_htcondor(CHECKPOINTING, JobSpec(name="x", checkpoint_files=()), CHTC)


@pytest.mark.parametrize("request_, pool", [
    (CHECKPOINTING, CHTC), (PLAIN, CHTC),
    (Request(request_cpus=2, request_memory_mb=8192, request_gpus=1, job_length="Long",
             gpus_minimum_capability=8.0, checkpoint_interval_minutes=120), OSPOOL),
])
def test_generated_file_passes_advisor_check(request_, pool):
    from advisor.check import check_text

    report = check_text(render_htcondor(request_, JOB, pool), pool)
    assert report.errors == []
    assert [f for f in report.findings if f.severity == "warning"] == []


# --- the wrapper --------------------------------------------------------------------------

def _run_wrapper(tmp_path: Path, program_body: str, minutes: float) -> subprocess.CompletedProcess:
    request = Request(checkpoint_interval_minutes=minutes)
    job = JobSpec(name="w", executable="prog.sh")
    (tmp_path / "prog.sh").write_text("#!/bin/bash\n" + program_body + "\n")
    os.chmod(tmp_path / "prog.sh", 0o755)
    (tmp_path / WRAPPER_NAME).write_text(render_checkpoint_wrapper(request, job))
    # timeout=: only a guard against a hung wrapper; the tests assert behaviour, not speed
    return subprocess.run(["bash", WRAPPER_NAME, "a b", "c"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_wrapper_exits_85_when_the_interval_ends(tmp_path):
    # the program would run 10 minutes; the 1 s interval stops it (SIGTERM) before its last line
    done = _run_wrapper(tmp_path, "echo $$ > prog.pid; trap 'exit 143' TERM; sleep 600 & wait; touch finished",
                        minutes=1 / 60)
    assert done.returncode == 85
    assert "checkpoint interval 1s reached; exiting 85" in done.stderr
    assert not (tmp_path / "finished").exists()  # stopped, not run to its end
    assert not _alive(int((tmp_path / "prog.pid").read_text()))


def test_wrapper_passes_the_programs_own_exit_code_and_arguments(tmp_path):
    done = _run_wrapper(tmp_path, 'echo "$1|$2"; exit 3', minutes=1)
    assert done.returncode == 3
    assert done.stdout.strip() == "a b|c"
    assert _run_wrapper(tmp_path, "exit 0", minutes=1).returncode == 0


def test_wrapper_text_and_syntax(tmp_path):
    text = render_checkpoint_wrapper(CHECKPOINTING, JOB)
    assert text.startswith("#!/bin/bash")
    assert "14400" in text and "./train.sh \"$@\" &" in text
    assert "exit 85" in text and "trap 'stop evicted" in text
    assert text.index("mkdir -p output") < text.index("./train.sh")   # files are the program's to write
    folder = render_checkpoint_wrapper(CHECKPOINTING, JobSpec(name="d", executable="run.sh",
                                                              checkpoint_files=("checkpoints",)))
    assert folder.index("mkdir -p checkpoints output") < folder.index("./run.sh")
    (tmp_path / "w.sh").write_text(text)
    assert subprocess.run(["bash", "-n", str(tmp_path / "w.sh")]).returncode == 0
    with pytest.raises(InputError, match="checkpoint_interval_minutes"):
        render_checkpoint_wrapper(PLAIN, JOB)


# --- write_files ---------------------------------------------------------------------------

def test_write_files_all_targets(tmp_path):
    paths = write_files(CHECKPOINTING, JOB, CHTC, tmp_path, ["htcondor", "slurm", "kubernetes"])
    names = [p.name for p in paths]
    assert names == ["train-resnet.sub", "train-resnet.sbatch", "train-resnet.job.yaml", WRAPPER_NAME]
    wrapper = tmp_path / WRAPPER_NAME
    assert wrapper.stat().st_mode & stat.S_IXUSR
    assert not (tmp_path / "train-resnet.sub").stat().st_mode & stat.S_IXUSR
    assert (tmp_path / "train-resnet.sub").read_text() == render_htcondor(CHECKPOINTING, JOB, CHTC)
    assert not list(tmp_path.glob(".*.tmp"))


def test_write_files_without_checkpointing_writes_no_wrapper(tmp_path):
    paths = write_files(PLAIN, JOB, CHTC, tmp_path, ["htcondor"])
    assert [p.name for p in paths] == ["train-resnet.sub"]


def test_write_files_unknown_target_writes_nothing(tmp_path):
    with pytest.raises(InputError, match="Did you mean 'slurm'"):
        write_files(PLAIN, JOB, CHTC, tmp_path / "out", ["htcondor", "slrum"])
    assert not (tmp_path / "out").exists()
