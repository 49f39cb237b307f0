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
from dataclasses import dataclass
from pathlib import Path

import pytest
from slurm_cluster import SlurmCluster, slurm_cluster_fixture  # noqa: F401 - the `slurm` fixture

REPO = Path(__file__).resolve().parents[1]
ADVISOR = [sys.executable, "-m", "advisor.cli"]
sys.path.insert(0, str(REPO / "examples"))


def advisor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ADVISOR, *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "MPLBACKEND": "Agg", **(env or {})}, timeout=120)


def recommend_into(tmp: Path, name: str, epochs: int, workload: str | None = None
                   ) -> tuple[subprocess.Popen[str], Path]:
    """Start `advisor recommend --target slurm -o DIR` for the cat/dog CNN with `epochs`."""
    prof = json.loads((REPO / "profiles" / "cnn_catdog.json").read_text())
    prof["args"] = ["--data-dir", "examples/data/catdog", "--epochs", str(epochs),
                    "--num-workers", "0"]
    profile = tmp / f"{name}.json"
    profile.write_text(json.dumps(prof))
    target, extra = str(profile), []
    if workload:   # a long resumable training on the OSPool: the recommendation checkpoints
        spec = tmp / f"{name}.yaml"
        spec.write_text(workload.format(profile=profile))
        target, extra = str(spec), ["--pool", "ospool"]
    out = tmp / name
    proc = subprocess.Popen([*ADVISOR, "recommend", target, "--target", "slurm", "-o", str(out),
                             "--replications", "1", *extra], cwd=REPO, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "MPLBACKEND": "Agg"})
    return proc, out


def stage(out: Path, data: Path) -> None:
    """The files the script says to stage beside it: the script and catdog.tar.gz."""
    with tarfile.open(out / "catdog.tar.gz", "w:gz") as tar:
        tar.add(data, arcname="catdog")
    shutil.copy(REPO / "examples" / "cnn_catdog.py", out / "cnn_catdog.py")


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


@dataclass
class Submitted:
    plain: Path
    plain_job: str
    long: Path
    long_job: str
    signal: str


@pytest.fixture(scope="module")
def submitted(slurm: SlurmCluster, tmp_path_factory: pytest.TempPathFactory) -> Submitted:
    """Both jobs written by `advisor recommend` and submitted at once (they run side by side on
    the test node): a short one, and a long checkpointing one with a one-minute limit."""
    from make_catdog_images import make_images

    tmp = tmp_path_factory.mktemp("slurm-jobs")
    runs = [recommend_into(tmp, "plain", epochs=2),
            recommend_into(tmp, "long", epochs=400, workload=LONG_TRAINING)]
    data = make_images(tmp / "data" / "catdog", per_class=40, seed=0)
    for proc, out in runs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        stage(out, data)
    (_, plain), (_, long) = runs
    said = directives(long / "catdog-long.sbatch")
    assert "--requeue" in said
    (warning,) = [d for d in said if d.startswith("--signal=B:")]
    signal_name = warning.split(":", 1)[1].split("@")[0]
    # The job's python3 is this interpreter (torch is installed here), as a user's `module
    # load` or conda environment would provide it.
    slurm.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{slurm.env['PATH']}"
    # The emitted limit and warning (hours, 120 s) shortened to fit a test: a one-minute limit
    # and the signal 59 s before it. slurmctld checks limits every 30 s, so the signal comes
    # 1-31 s into the run; the 400 epochs take minutes, so it comes while the program trains.
    long_job = slurm.sbatch(["--time=1", f"--signal=B:{signal_name}@59", "catdog-long.sbatch"],
                            cwd=long)
    plain_job = slurm.sbatch(["cnn_catdog.sbatch"], cwd=plain)
    return Submitted(plain, plain_job, long, long_job, signal_name)


def test_emitted_job_runs_to_completion_and_writes_its_output(slurm, submitted):
    out, job = submitted.plain, submitted.plain_job
    said = directives(out / "cnn_catdog.sbatch")
    assert "--gres=gpu:1" in said   # a count-only GPU on the test node (tests/slurm_cluster.py)
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
    assert tres["cpu"] == cpus and tres["mem"] == mem
    assert info.get("TresPerNode") in ("gres:gpu:1", "gres/gpu:1")

    # `advisor logs --sacct JOB`: Slurm's own record of the job, against the request.
    r = advisor("logs", "--sacct", job, "--json", env={"SLURM_CONF": str(slurm.conf)})
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    (row,) = rep["jobs"]
    assert row["job"] == job and row["state"] == "completed" and row["exit_code"] == 0
    assert row["cpus"]["requested"] == int(cpus)
    assert row["memory_mb"]["requested"] == int(mem.rstrip("M"))
    assert row["wall_hours"] > 0


def test_checkpointing_job_is_signalled_requeues_and_resumes(slurm, submitted):
    out, job = submitted.long, submitted.long_job
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
    # The requeue is in Slurm's record of the job, as an eviction of the HTCondor report.
    r = advisor("logs", "--sacct", job, "--json", env={"SLURM_CONF": str(slurm.conf)})
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)["jobs"]
    assert row["evictions"] >= 1


# --- advisor logs on saved sacct output (no cluster needed) ------------------------------------
# The layout of `sacct --parsable2 --duplicates --format=<SACCT_FIELDS>`: the allocation row
# carries the request, the step rows the usage (MaxRSS in K, TotalCPU as [D-]HH:MM:SS or MM:SS.f).
SACCT = """\
JobID|JobName|State|ExitCode|ReqCPUS|AllocCPUS|ReqMem|ReqTRES|AllocTRES|Submit|Start|End|Elapsed|Timelimit|TotalCPU|MaxRSS|TRESUsageInMax|TRESUsageInAve|NodeList
41|train|REQUEUED|0:0|4|4|16G|billing=4,cpu=4,gres/gpu=1,mem=16G,node=1|billing=4,cpu=4,gres/gpu=1,mem=16G,node=1|2024-05-01T10:00:00|2024-05-01T10:00:05|2024-05-01T11:00:05|01:00:00|02:00:00|01:30:00||||gpu01
41.batch|batch|CANCELLED|0:15|4|4|||||2024-05-01T10:00:05|2024-05-01T11:00:05|01:00:00||01:30:00|3145728K|cpu=01:30:00,mem=3145728K||gpu01
41|train|COMPLETED|0:0|4|4|16G|billing=4,cpu=4,gres/gpu=1,mem=16G,node=1|billing=4,cpu=4,gres/gpu=1,mem=16G,node=1|2024-05-01T10:00:00|2024-05-01T11:02:00|2024-05-01T12:02:00|01:00:00|02:00:00|01:00:00||||gpu01
41.batch|batch|COMPLETED|0:0|4|4|||||2024-05-01T11:02:00|2024-05-01T12:02:00|01:00:00||01:00:00|4194304K|cpu=01:00:00,mem=4194304K||gpu01
41.extern|extern|COMPLETED|0:0|4|4|||||2024-05-01T11:02:00|2024-05-01T12:02:00|01:00:00||00:00.002|1024K|||gpu01
42|train|OUT_OF_MEMORY|0:125|4|4|16G|billing=4,cpu=4,gres/gpu=1,mem=16G,node=1|billing=4,cpu=4,gres/gpu=1,mem=16G,node=1|2024-05-01T10:00:00|2024-05-01T10:00:05|2024-05-01T10:30:05|00:30:00|02:00:00|00:20:00||||gpu02
42.batch|batch|OUT_OF_MEMORY|0:125|4|4|||||2024-05-01T10:00:05|2024-05-01T10:30:05|00:30:00||00:20:00|16777216K|||gpu02
"""


def test_logs_reads_sacct_parsable_usage_against_the_request(tmp_path):
    saved = tmp_path / "sacct.txt"
    saved.write_text(SACCT)
    r = advisor("logs", str(saved), "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    jobs = {j["job"]: j for j in rep["jobs"]}
    a, b = jobs["41"], jobs["42"]
    assert a["state"] == "completed" and a["executions"] == 2 and a["evictions"] == 1
    assert [run["outcome"] for run in a["runs"]] == ["requeued", "terminated"]
    assert a["memory_mb"] == {"requested": 16384, "allocated": 16384, "used": 4096}
    assert a["cpus"]["requested"] == 4 and a["cpus"]["used"] == 1.0     # 1 h CPU in 1 h
    assert a["gpus"]["requested"] == 1
    assert b["state"] == "out_of_memory" and b["holds"][0]["category"] == "memory"
    assert b["memory_mb"]["used"] == 16384
    rec = rep["recommendation"]
    # Job 42 was killed at its 16 GB: a memory finding, and #SBATCH lines for next time.
    assert any(f["kind"] == "hold_memory" for f in rec["findings"])
    assert any(line.startswith("#SBATCH --mem=") for line in rec["submit_lines"])
    assert "#SBATCH --gres=gpu:1" in rec["submit_lines"]


def test_logs_reads_sacct_json(tmp_path):
    doc = {"jobs": [{
        "job_id": 7, "name": "train", "state": {"current": ["COMPLETED"]},
        "exit_code": {"status": ["SUCCESS"], "return_code": {"set": True, "number": 0}},
        "tres": {"requested": [{"type": "cpu", "count": 2}, {"type": "mem", "count": 8192},
                               {"type": "gres", "name": "gpu", "count": 1}],
                 "allocated": [{"type": "cpu", "count": 2}, {"type": "mem", "count": 8192},
                               {"type": "gres", "name": "gpu", "count": 1}]},
        "time": {"submission": 1714557600, "start": 1714557605, "end": 1714561205,
                 "elapsed": 3600, "limit": {"set": True, "number": 120},
                 "total": {"seconds": 5400, "microseconds": 0}},
        "steps": [{"step": {"id": {"job_id": 7, "step_id": "batch"}, "name": "batch"},
                   "tres": {"requested": {"max": [{"type": "mem", "count": 3 * 2**30}]}}}]}]}
    saved = tmp_path / "sacct.json"
    saved.write_text(json.dumps(doc))
    r = advisor("logs", str(saved), "--json")
    assert r.returncode == 0, r.stderr
    (job,) = json.loads(r.stdout)["jobs"]
    assert job["state"] == "completed" and job["exit_code"] == 0
    assert job["memory_mb"]["requested"] == 8192 and job["memory_mb"]["used"] == 3072
    assert job["cpus"]["used"] == 1.5 and job["wall_hours"] == 1.0


def test_logs_refuses_a_mix_of_slurm_and_htcondor_logs(tmp_path):
    saved = tmp_path / "sacct.txt"
    saved.write_text(SACCT)
    other = tmp_path / "job.log"
    other.write_text("000 (001.000.000) 2024-05-01 10:00:00 Job submitted from host: <1.2.3.4>\n...\n")
    r = advisor("logs", str(saved), str(other))
    assert r.returncode == 2 and "separate runs" in r.stderr
