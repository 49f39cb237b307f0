"""advisor recommend: every candidate shown, one chosen, request values traceable, files that parse."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import htcondor2
import pytest

from advisor.cli import main
from advisor.recommend import recommend
from advisor.workload import workload_from_dict

WORKLOADS = Path(__file__).resolve().parents[1] / "examples" / "workloads"


def test_catdog_recommendation_and_submit_file(tmp_path, capsys):
    code = main(["recommend", str(WORKLOADS / "4_catdog.yaml"), "--replications", "2",
                 "-o", str(tmp_path), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["verdict"] == "htc-able"
    req = data["request"]
    assert set(req) >= {"request_cpus", "request_memory_mb", "request_disk_mb", "request_gpus",
                        "gpus_minimum_capability", "gpus_minimum_memory_mb", "job_length",
                        "is_resumable", "checkpoint_interval_minutes"}
    assert req["request_memory_mb"] == 6144            # the workload's 6 GB
    assert req["gpus_minimum_memory_mb"] >= 4 * 1024   # 4 GB + margin + context
    assert sum(c["chosen"] for c in data["candidates"]) == 1
    assert len(data["candidates"]) >= 3
    ttr = data["expected"]["time_to_results_hours"]
    assert 0 < ttr["mean"] <= ttr["p90"] + 1e-9
    sub = next(Path(f) for f in data["files"] if f.endswith(".sub"))
    parsed = htcondor2.Submit(sub.read_text())
    assert parsed["request_memory"] == "6144MB"
    assert parsed["request_gpus"] == "1"
    assert parsed["MY.GPUJobLength"] == f'"{req["job_length"]}"'
    assert parsed["executable"] == "run.sh"
    assert os.access(tmp_path / "run.sh", os.X_OK)
    # The written file passes the advisor's own review on the same pool.
    assert main(["check", str(sub), "--pool", "chtc", "--json"]) == 0
    capsys.readouterr()


def test_long_training_checkpoints_with_wrapper_and_exit_code_85(tmp_path):
    # 600 reference-GPU hours: longer than the 7-day tier even on an H200.
    w = workload_from_dict({"name": "arch", "kind": "training", "tasks": 12,
                            "per_task": {"gpu_hours": 600, "gpu_memory_gb": 20, "memory_gb": 16,
                                         "checkpoint_gb": 1, "precision": "bf16"}})
    rec = recommend(w, "chtc", replications=2)
    assert rec.verdict == "htc-able-with-checkpointing"
    assert rec.request is not None and rec.request.checkpoint_interval_minutes
    assert rec.request.gpus_minimum_capability is not None and rec.request.gpus_minimum_capability >= 8.0
    assert "explanation" in rec.checkpoint
    # Daly's numbers appear whenever the chosen slots can evict the job (backfill on CHTC).
    assert ("daly" in rec.checkpoint) == rec.request.is_resumable
    from advisor.recommend import write_job_files
    paths = write_job_files(rec, "chtc", tmp_path)
    sub = htcondor2.Submit(next(p for p in paths if p.suffix == ".sub").read_text())
    assert sub["checkpoint_exit_code"] == "85"
    assert sub["executable"] == "checkpoint_wrapper.sh"
    wrapper = tmp_path / "checkpoint_wrapper.sh"
    assert os.access(wrapper, os.X_OK)
    assert subprocess.run(["bash", "-n", str(wrapper)]).returncode == 0


def test_verdict_follows_the_chosen_plan():
    # 40 h on the reference GPU: the typical GPU needs checkpoints, but on capability 9.0 GPUs each
    # task fits the 24 h tier; the verdict must agree with the request that is recommended.
    w = workload_from_dict({"name": "arch", "kind": "training", "tasks": 12,
                            "per_task": {"gpu_hours": 40, "gpu_memory_gb": 20, "memory_gb": 16,
                                         "checkpoint_gb": 1, "precision": "bf16"}})
    rec = recommend(w, "chtc", replications=2)
    assert rec.request is not None
    checkpoints = rec.request.checkpoint_interval_minutes is not None
    assert (rec.verdict == "htc-able-with-checkpointing") == checkpoints
    if not checkpoints:
        assert any("without checkpointing" in r for r in rec.reasons)


def test_not_a_fit_exits_1_without_files(tmp_path, capsys):
    code = main(["recommend", str(WORKLOADS / "3_foundation_model.yaml"), "-o", str(tmp_path), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["verdict"] == "not-a-fit"
    assert data["request"] is None and data["files"] == []
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("target, suffix", [("slurm", ".sbatch"), ("kubernetes", ".yaml")])
def test_other_targets(tmp_path, capsys, target, suffix):
    code = main(["recommend", str(WORKLOADS / "4_catdog.yaml"), "--replications", "1",
                 "--target", target, "-o", str(tmp_path), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert any(f.endswith(suffix) for f in data["files"]), data["files"]


def test_bad_options_exit_2(capsys):
    assert main(["recommend", str(WORKLOADS / "4_catdog.yaml"), "--background-load", "1.5"]) == 2
    assert "--background-load" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["recommend", str(WORKLOADS / "4_catdog.yaml"), "--objective", "median"])
    assert exc.value.code == 2


def test_input_bound_profile_caps_cpus_at_what_the_slots_offer(tmp_path):
    """A profile whose loader would need 49 CPUs per GPU: the request is capped at what at least
    half of the usable slots offer, and candidates that match no slot are reported, not fatal."""
    import json

    from advisor.workload import workload_from_profile

    fixture = Path(__file__).parent / "fixtures" / "profiles" / "input_bound_cnn.json"
    data = json.loads(fixture.read_text())
    # CPUs to feed never exceed what the script can use (num_workers + 1): with 2 workers that
    # is 3; with 64 workers the slots' offer is the cap
    data["dataloader"]["num_workers"] = 64
    profile = tmp_path / "input_bound_cnn.json"
    profile.write_text(json.dumps(data))
    rec = recommend(workload_from_profile(profile, epochs=30), "chtc", replications=1)
    assert rec.request is not None
    assert rec.request.request_cpus <= 16
    as_is = recommend(workload_from_profile(fixture, epochs=30), "chtc", replications=1)
    assert as_is.request is not None and as_is.request.request_cpus <= 3
    assert "offered by at least half of the usable GPU slots" in rec.why["request_cpus"]
    assert all(e.outcome is not None or e.candidate.why_not for e in rec.candidates)
