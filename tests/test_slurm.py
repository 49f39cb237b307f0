"""The Slurm script `advisor recommend --target slurm` writes, run on a real one-node Slurm
cluster (tests/slurm.py; skipped with the reason where Slurm cannot start), and
`advisor logs` reading Slurm's accounting.

The job is the cat/dog CNN (examples/cnn_catdog.py) on a tiny generated image set, run as the
emitted files say: the data archive and the script staged in the job directory, `sbatch` there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from slurm_cluster import SlurmCluster, slurm_cluster_fixture  # noqa: F401 - the `slurm` fixture

REPO = Path(__file__).resolve().parents[1]
ADVISOR = [sys.executable, "-m", "advisor.cli"]
sys.path.insert(0, str(REPO / "examples"))


def advisor(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ADVISOR, *args], capture_output=True, text=True, cwd=cwd or REPO,
                          env={**os.environ, "MPLBACKEND": "Agg", **(env or {})}, timeout=120)


def job_dir(tmp: Path, name: str, epochs: int, workload: str | None = None) -> Path:
    """`advisor recommend --target slurm -o DIR` for the cat/dog CNN with `epochs`, and the
    files the script says to stage beside it (the script and catdog.tar.gz)."""
    from make_catdog_images import make_images

    prof = json.loads((REPO / "profiles" / "cnn_catdog.json").read_text())
    prof["args"] = ["--data-dir", "examples/data/catdog", "--epochs", str(epochs),
                    "--num-workers", "0"]
    profile = tmp / f"{name}.json"
    profile.write_text(json.dumps(prof))
    target = str(profile)
    extra: list[str] = []
    if workload:   # a long resumable training on the OSPool: the recommendation checkpoints
        spec = tmp / f"{name}.yaml"
        spec.write_text(workload.format(profile=profile))
        target, extra = str(spec), ["--pool", "ospool"]
    out = tmp / name
    r = advisor("recommend", target, "--target", "slurm", "-o", str(out), "--replications", "1",
                *extra)
    assert r.returncode == 0, r.stderr
    data = tmp / "data" / "catdog"
    if not data.exists():
        make_images(data, per_class=40, seed=0)
    with tarfile.open(out / "catdog.tar.gz", "w:gz") as tar:
        tar.add(data, arcname="catdog")
    shutil.copy(REPO / "examples" / "cnn_catdog.py", out / "cnn_catdog.py")
    return out


LONG_TRAINING = """\
name: catdog-long
kind: training
tasks: 1
resumable: true
per_task: {{profile: {profile}, steps: 2000000, gpus: 1}}
"""


def directives(script: Path) -> list[str]:
    return [line.split(None, 1)[1] for line in script.read_text().splitlines()
            if line.startswith("#SBATCH ")]


def sbatch_env(cluster: SlurmCluster) -> None:
    """The job's python3 is this interpreter (torch is installed here), as a user's `module
    load` or conda environment would provide it."""
    cluster.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{cluster.env['PATH']}"


def test_emitted_job_runs_to_completion_and_writes_its_output(slurm, tmp_path):
    out = job_dir(tmp_path, "plain", epochs=2)
    script = out / "cnn_catdog.sbatch"
    said = directives(script)
    assert "--gres=gpu:1" in said and not any(d.startswith("--requeue") for d in said)
    sbatch_env(slurm)
    job = slurm.sbatch([script.name], cwd=out)
    info = slurm.wait(job, timeout_s=90)
    log = out / f"cnn_catdog_{job}.out"        # --output=cnn_catdog_%j.out
    err = out / f"cnn_catdog_{job}.err"
    assert info["JobState"] == "COMPLETED", (info, err.read_text() if err.exists() else "")
    assert info["ExitCode"] == "0:0"
    assert "epoch 1: accuracy" in log.read_text()
    assert (out / "output" / "cnn_catdog.pt").stat().st_size > 0   # ADVISOR_OUTPUT_DIR=output
    assert (out / "checkpoints" / "checkpoint.pt").is_file()        # ADVISOR_CHECKPOINT_DIR
    # The request reached Slurm as written: 3 CPUs, the memory, one (count-only) GPU.
    tres = dict(kv.split("=", 1) for kv in info["TRES"].split(","))
    cpus = next(d for d in said if d.startswith("--cpus-per-task=")).split("=")[1]
    mem = next(d for d in said if d.startswith("--mem=")).split("=")[1]
    assert tres["cpu"] == cpus and tres["mem"] == mem and tres.get("gres/gpu") == "1"

    # `advisor logs --sacct JOB`: Slurm's own record of the job, against the request.
    r = advisor("logs", "--sacct", job, "--json", env={"SLURM_CONF": str(slurm.conf)})
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    (row,) = rep["jobs"]
    assert row["job"] == job and row["state"] == "completed" and row["exit_code"] == 0
    assert row["cpus"]["requested"] == int(cpus)
    assert row["memory_mb"]["requested"] == int(mem.rstrip("M"))
    assert row["wall_hours"] > 0


def test_checkpointing_job_is_signalled_requeues_and_resumes(slurm, tmp_path):
    out = job_dir(tmp_path, "long", epochs=400, workload=LONG_TRAINING)
    script = out / "catdog-long.sbatch"
    said = directives(script)
    assert "--requeue" in said and any(d.startswith("--signal=B:USR1@") for d in said)
    sbatch_env(slurm)
    # The emitted limit and warning (hours, 120 s) shortened to fit a test: a one-minute limit
    # and USR1 59 s before it. slurmctld checks limits every 30 s, so the signal comes 1-31 s
    # into the run; the 400 epochs take minutes, so it comes while the program trains.
    job = slurm.sbatch(["--time=1", "--signal=B:USR1@59", script.name], cwd=out)
    log, err = out / f"catdog-long_{job}.out", out / f"catdog-long_{job}.err"
    deadline = time.monotonic() + 75
    seen: list[str] = []
    info: dict[str, str] = {}
    while time.monotonic() < deadline:
        info = slurm.job(job)
        state = info.get("JobState", "?")
        if not seen or seen[-1] != state:
            seen.append(state)
        assert state not in ("TIMEOUT", "FAILED", "CANCELLED", "COMPLETED"), (
            seen, err.read_text() if err.exists() else "")
        text = log.read_text() if log.exists() else ""
        if int(info.get("Restarts", 0)) >= 1 and "resumed from checkpoints/checkpoint.pt" in text:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"no requeue and resume within 75 s: states {seen}, {info.get('Reason')}; "
                    f"stdout {log.read_text() if log.exists() else '-'}")
    try:
        text = log.read_text()
        stderr = err.read_text()
        assert f"advisor: requeueing {job} to resume from the checkpoint" in stderr
        assert "stopped by SIGTERM, checkpoint saved" in text       # saved before the limit
        assert "PENDING" in seen                                     # requeued, then ran again
        resumed = next(line for line in text.splitlines() if line.startswith("resumed from"))
        epoch = int(resumed.rsplit(" ", 1)[1])
        assert f"epoch {epoch - 1}: accuracy" in text or epoch == 0
        # The resumed run goes on from the saved epoch, not from the start.
        deadline = time.monotonic() + 30
        while f"epoch {epoch}: accuracy" not in log.read_text().split(resumed, 1)[1]:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
    finally:
        slurm.run(["scancel", job], check=False)
