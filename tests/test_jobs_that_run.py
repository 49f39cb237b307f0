"""Job files that run on the real pool (issue 13): one test per fault found in what `advisor
recommend` wrote, and the demo job run the way an execute point runs it (fresh sandbox with the
transferred files, SIGTERM to the top-level process, a new sandbox with what HTCondor keeps)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import htcondor2
import pytest

from advisor.check import check_text
from advisor.cli import main
from advisor.emit import render_checkpoint_wrapper, render_kubernetes, render_slurm
from advisor.emit.container import BUILD_FLOOR, NEW_BUILD, WIDE_BUILD, choose_build, job_image
from advisor.recommend import recommend, write_job_files
from advisor.recommend.jobfiles import DataPlan, plan_inputs, plan_outputs, render_run_sh
from advisor.recommend.sizing import CUDA_RUNTIME_HOST_MB, DEFAULT_CPUS, size_request
from advisor.request import DataFile, JobSpec, Request
from advisor.workload import load_workload, workload_from_dict
from simulator.pool import load_pool

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ROOT / "examples" / "workloads"
PROFILE = ROOT / "profiles" / "cnn_catdog.json"
CHTC = load_pool("chtc")


def _sub(path: Path) -> htcondor2.Submit:
    return htcondor2.Submit(path.read_text())


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """`advisor recommend -o` for the three use cases that fit and the demo profile."""
    out = {}
    for name in ("1_cosmos_pdfs", "2_many_architectures", "4_catdog"):
        d = tmp_path_factory.mktemp(name)
        assert main(["recommend", str(WORKLOADS / f"{name}.yaml"), "--replications", "1",
                     "-o", str(d), "--json"]) == 0
        out[name] = d
    d = tmp_path_factory.mktemp("demo")
    assert main(["recommend", str(PROFILE), "--epochs", "3", "--replications", "1", "-o", str(d),
                 "--json"]) == 0
    out["demo"] = d
    return out


def _submit_file(d: Path) -> Path:
    return next(d.glob("*.sub"))


# --- 1. the demo's files ------------------------------------------------------------------------

def test_demo_request_cpus_is_the_profiled_loader_not_the_predicted_feed(written):
    sub = _sub(_submit_file(written["demo"]))
    workers = json.loads(PROFILE.read_text())["dataloader"]["num_workers"]
    assert sub["request_cpus"] == str(workers + 1)


def test_demo_run_sh_execs_with_relative_data_and_creates_output_first(written):
    text = (written["demo"] / "run.sh").read_text()
    code = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert code[0] == "set -euo pipefail" and code[1] == "mkdir -p checkpoints output"
    assert code[-1].startswith("exec python3 cnn_catdog.py --data-dir catdog ")
    assert "examples/data" not in code[-1]          # the unpacked, relative path
    assert "tar czf catdog.tar.gz -C examples/data catdog" in text


def test_demo_has_a_pinned_container_and_the_capability_its_torch_build_needs(written):
    sub = _sub(_submit_file(written["demo"]))
    image = sub["container_image"]
    assert image.startswith("docker://pytorch/pytorch:") and not image.endswith(":latest")
    # torch 2.13 profiled: the default CUDA 13 build has no kernels below 7.5 (no P100 on CHTC)
    assert float(sub["gpus_minimum_capability"]) >= BUILD_FLOOR[NEW_BUILD] == 7.5


def test_demo_keeps_its_checkpoint_across_an_eviction(written):
    sub = _sub(_submit_file(written["demo"]))
    assert sub["when_to_transfer_output"] == "ON_EXIT_OR_EVICT"
    assert [s.strip() for s in sub["transfer_output_files"].split(",")] == ["output", "checkpoints"]


def _sandbox(root: Path, job_dir: Path, inputs: list[str], name: str) -> Path:
    box = root / name
    box.mkdir()
    for entry in ["run.sh", *inputs]:
        (box / entry).write_bytes((job_dir / entry).read_bytes())
    os.chmod(box / "run.sh", 0o755)
    return box


def _python_path(tmp: Path) -> dict[str, str]:
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "python3"      # this interpreter (a symlink would lose the virtualenv)
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    shim.chmod(0o755)
    return dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")


def test_demo_job_runs_and_resumes_from_its_checkpoint_after_an_eviction(written, tmp_path):
    """What `make demo` writes, run as an execute point runs it (docs/DOMAIN.md)."""
    sys.path.insert(0, str(ROOT / "examples"))
    from make_catdog_images import make_images
    job = written["demo"]
    data = tmp_path / "made" / "catdog"
    make_images(str(data), per_class=40, seed=0)
    with tarfile.open(job / "catdog.tar.gz", "w:gz") as tar:   # relative paths, as run.sh says
        tar.add(data, arcname="catdog")
    (job / "cnn_catdog.py").write_bytes((ROOT / "examples" / "cnn_catdog.py").read_bytes())
    sub = _sub(_submit_file(job))
    inputs = [s.strip() for s in sub["transfer_input_files"].split(",")]
    env = _python_path(tmp_path)
    # 1. evicted mid-training: SIGTERM to run.sh (exec'd python) once a checkpoint exists
    box = _sandbox(tmp_path, job, inputs, "first")
    proc = subprocess.Popen(["./run.sh", "--epochs", "400"], cwd=box, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("epoch 1:"):
            break
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=600)[0]
    assert proc.returncode == 143, rest
    assert (box / "checkpoints" / "checkpoint.pt").is_file()
    # 2. a new sandbox: the inputs + what ON_EXIT_OR_EVICT brought back (output, checkpoints)
    again = _sandbox(tmp_path, job, inputs, "second")
    for kept in ("checkpoints", "output"):
        (again / kept).mkdir()
        for f in (box / kept).iterdir():
            (again / kept / f.name).write_bytes(f.read_bytes())
    done = subprocess.run(["./run.sh", "--epochs", "4"], cwd=again, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resumed from checkpoints/checkpoint.pt at epoch" in done.stdout
    assert (again / "output" / "cnn_catdog.pt").is_file()
    for entry in sub["transfer_output_files"].split(","):
        assert (again / entry.strip()).exists()      # else HTCondor holds the job (code 12)


def test_wrapper_forwards_an_eviction_sigterm_and_exits_non_85(tmp_path):
    job = JobSpec(name="w", executable="prog.sh", checkpoint_files=("checkpoints",))
    (tmp_path / "prog.sh").write_text(
        "#!/bin/bash\ntrap 'echo saved > checkpoints/ckpt; exit 143' TERM\necho ready\n"
        "sleep 600 & wait\n")
    os.chmod(tmp_path / "prog.sh", 0o755)
    (tmp_path / "w.sh").write_text(render_checkpoint_wrapper(Request(checkpoint_interval_minutes=60), job))
    proc = subprocess.Popen(["bash", "w.sh"], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)            # HTCondor signals the top-level process only
    proc.communicate(timeout=120)
    assert proc.returncode not in (0, 85)
    assert (tmp_path / "checkpoints" / "ckpt").read_text().strip() == "saved"


# --- 2. the data plan --------------------------------------------------------------------------

def test_batched_jobs_each_get_their_own_shard_named_by_process(written):
    sub_path = _submit_file(written["1_cosmos_pdfs"])
    text = sub_path.read_text()
    assert "_inputs_$(Process).tar.gz" in text
    run_sh = (written["1_cosmos_pdfs"] / "run.sh").read_text()
    assert 'tar -xzf cosmos-pdfs_inputs_"${ADVISOR_JOB_INDEX}".tar.gz' in run_sh
    sub = _sub(sub_path)
    assert "ADVISOR_JOB_INDEX=$(Process)" in sub["environment"]


def test_large_queue_is_throttled_with_max_idle(written):
    sub = _sub(_submit_file(written["1_cosmos_pdfs"]))
    assert int(sub.getQArgs()) > 10_000 and int(sub["max_idle"]) <= 10_000


def test_dataset_and_output_beyond_the_quotas_send_the_user_to_a_facilitator(written, capsys):
    w = load_workload(WORKLOADS / "1_cosmos_pdfs.yaml")
    rec = recommend(w, "chtc", replications=1)
    said = " ".join(rec.reasons)
    assert "facilitator" in said and "/staging's 100 GB quota" in said
    assert rec.data_plan["outputs"]["area"] == "facilitator"        # 72 TB of output
    assert rec.data_plan["gpu_hours"] > 10_000 and "GPU-hours" in said


def test_unpinned_workload_image_becomes_a_named_sif_on_osdf(written):
    image = _sub(_submit_file(written["1_cosmos_pdfs"]))["container_image"]
    assert image.startswith("osdf:///chtc/staging/") and image.endswith(".sif")
    big = job_image(CHTC, 5_000, None, choose_build(CHTC, None, {8.0: 10}))
    assert big.value.endswith(".sif") and big.build_steps and "apptainer build" in big.build_steps[0]
    small = job_image(CHTC, 1, "docker://me/tool:1.2", None)
    assert small.value == "docker://me/tool:1.2"


def test_per_job_input_over_100_gb_is_named_not_dropped(tmp_path):
    w = workload_from_dict({"name": "huge", "kind": "inference", "tasks": 1,
                            "per_task": {"gpu_hours": 1, "input_gb": 150, "gpu_memory_gb": 8}})
    plan = DataPlan()
    inputs = plan_inputs(w, CHTC, 1, 1, False, plan)
    assert [f.path for f in inputs] == ["huge_inputs.tar.gz"]
    assert plan.inputs[0]["area"] == "facilitator" and "facilitator" in plan.facilitator[0]
    job = JobSpec(name="huge", inputs=inputs, extra={"data_plan": plan.to_dict()})
    text, _ = render_run_sh(job, "python3 x.py", None)
    assert "[ -e huge_inputs.tar.gz ] ||" in text          # run.sh stops with a message
    rec = recommend(w, "chtc", replications=1)     # the verdict says so too
    assert rec.verdict == "not-a-fit" and any("facilitator" in r for r in rec.reasons)


def test_outputs_too_large_for_home_are_remapped_to_staging(tmp_path):
    w = workload_from_dict({"name": "gen", "kind": "inference", "tasks": 20,
                            "per_task": {"gpu_hours": 1, "output_gb": 3, "gpu_memory_gb": 8}})
    plan = DataPlan()
    remap = plan_outputs(w, CHTC, 1, 20, plan)      # 60 GB in all: over /home's 40 GB
    assert remap is not None and remap.startswith("osdf:///chtc/staging/") and "$(Process)" in remap
    rec = recommend(w, "chtc", replications=1)
    write_job_files(rec, "chtc", tmp_path)
    sub = _sub(_submit_file(tmp_path))
    assert sub["transfer_output_remaps"].startswith('"output = osdf:///chtc/staging/')


def test_request_disk_counts_the_archive_and_its_unpacked_copy():
    w = workload_from_dict({"name": "d", "kind": "training", "tasks": 1,
                            "per_task": {"gpu_hours": 1, "input_gb": 20, "checkpoint_gb": 2,
                                         "gpu_memory_gb": 8}, "container": "docker://x/y:1"})
    s = size_request(w, [], 1, CHTC)
    assert s.request_disk_mb >= (20 + 20 + 2 * 2) * 1024     # archive + unpacked + 2 checkpoints
    assert "unpacked" in s.reasons["request_disk"]


def test_sweep_jobs_carry_their_own_trial_parameters(written):
    d = written["2_many_architectures"]
    sub = _sub(_submit_file(d))
    assert sub.getQArgs().replace(" ", "") == "trial_id,trial_argsfromtrials.txt"
    rows = (d / "trials.txt").read_text().splitlines()
    assert len(rows) == 200 and rows[0] == "0, --trial-id 0"
    assert sub["arguments"] == '"$(trial_args)"'


# --- 3. requests a facilitator would sign ---------------------------------------------------------

@pytest.mark.parametrize("kind", ["training", "inference"])
def test_hand_written_workloads_get_the_default_cpus_for_their_kind(kind):
    w = workload_from_dict({"name": "t", "kind": kind, "tasks": 1,
                            "per_task": {"gpu_hours": 72, "gpu_memory_gb": 20}})
    s = size_request(w, [], 1, CHTC)
    assert s.request_cpus == DEFAULT_CPUS[kind] > 1 and "default" in s.reasons["request_cpus"]


def test_cpu_profiled_memory_adds_the_cuda_runtime(written):
    prof = json.loads(PROFILE.read_text())
    assert prof["device"]["kind"] == "cpu"
    sub = _sub(_submit_file(written["demo"]))
    memory = int(sub["request_memory"].removesuffix("MB"))
    host = prof["peak_memory_bytes"]["host"] / 2**20
    assert memory >= host * 1.25 + CUDA_RUNTIME_HOST_MB


def test_capability_build_follows_the_pools_supply():
    # CHTC: 4 P100s of 122 shared GPUs: the CUDA 13 build, and the reason names what it leaves out
    b = choose_build(CHTC, None, {6.0: 4, 7.5: 8, 8.0: 110})
    assert b.key == NEW_BUILD and b.floor == 7.5 and "leaves out 4" in b.reason
    # many older GPUs: the CUDA 12.6 build keeps them
    b = choose_build(CHTC, None, {7.0: 40, 8.0: 60})
    assert b.key == WIDE_BUILD and b.floor == BUILD_FLOOR[WIDE_BUILD]
    # bf16 needs 8.0 whatever the supply; torch >= 2.15 has no CUDA 12.6 build
    assert choose_build(CHTC, 8.0, {7.0: 40, 8.0: 60}).floor == 8.0
    assert choose_build(CHTC, None, {7.0: 40, 8.0: 60}, "2.15.0").key == NEW_BUILD


# --- 4. advisor check on every written file ---------------------------------------------------------

@pytest.mark.parametrize("name", ["1_cosmos_pdfs", "2_many_architectures", "4_catdog", "demo"])
def test_check_reports_no_warning_on_written_files(written, name):
    path = _submit_file(written[name])
    report = check_text(path.read_text(), CHTC, path=str(path))
    assert report.errors == [] and [f for f in report.findings if f.severity == "warning"] == []
    if name == "demo":   # a one-minute job is never told to checkpoint
        assert not any("checkpoint" in f.message.lower() for f in report.findings)


# --- 5. Slurm and Kubernetes ---------------------------------------------------------------------

def test_slurm_signals_requeues_and_execs(written):
    w = load_workload(WORKLOADS / "2_many_architectures.yaml")
    rec = recommend(w, "chtc", replications=1)
    assert rec.request is not None and rec.job is not None
    text = render_slurm(rec.request, rec.job, CHTC)
    assert "#SBATCH --requeue" in text and "#SBATCH --signal=B:TERM@" in text
    assert "./checkpoint_wrapper.sh" in text and "scontrol requeue" in text
    plain = render_slurm(Request(), JobSpec(name="p"), CHTC)
    assert "exec srun ./run.sh" in plain


def test_kubernetes_runs_the_same_image_with_the_same_request(written):
    w = load_workload(WORKLOADS / "1_cosmos_pdfs.yaml")
    rec = recommend(w, "chtc", replications=1)
    assert rec.request is not None and rec.job is not None
    text = render_kubernetes(rec.request, rec.job, CHTC)
    assert "image: cosmos/visual-pipeline" in text
    assert f"memory: {rec.request.request_memory_mb}Mi" in text
    assert f"cpu: '{rec.request.request_cpus}'" in text


def test_torchrun_jobs_map_sigterm_to_a_stop_file():
    job = JobSpec(name="ddp", extra={"launcher": {"nproc": 4}})
    text, _ = render_run_sh(job, "python3 train.py --x 1", None)
    assert "torchrun --standalone --nproc_per_node=4 --shutdown-timeout=" in text
    assert 'trap \'touch "$ADVISOR_STOP_FILE"\' TERM' in text
    assert DataFile  # noqa: B018 - imported for the data-plan tests above
