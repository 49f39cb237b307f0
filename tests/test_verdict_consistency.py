"""`assess` and `recommend` give the same verdict for the same workload, or `recommend` says which
simulated fact changed it (`verdict_differs_from_assess`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from advisor.assess import assess
from advisor.recommend import recommend
from advisor.workload import load_workload_or_profile
from simulator.pool import load_pool

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples" / "workloads").glob("*.yaml"))


def check_consistent(rec_dict: dict, assess_verdict: str) -> None:
    assert rec_dict["assess_verdict"] == assess_verdict
    if rec_dict["verdict"] == assess_verdict:
        assert rec_dict["verdict_differs_from_assess"] is None
    else:
        fact = rec_dict["verdict_differs_from_assess"]
        assert fact and f"assess said {assess_verdict}" in fact
        assert fact in rec_dict["reasons"][0]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_get_the_same_verdict_or_the_fact_that_changed_it(path: Path) -> None:
    workload = load_workload_or_profile(path)
    alone = assess(workload, load_pool("chtc"))
    rec = recommend(workload, "chtc", replications=2, seed=1)
    assert rec.assessment.verdict == alone.verdict
    check_consistent(rec.to_dict(), alone.verdict)
    if rec.request is not None:       # the campaign's GPU-hours and the share of the pool it held
        assert rec.expected["gpu_hours"] > 0
        assert 0 < rec.expected["pool_gpu_share"] <= 1


def test_a_changed_verdict_names_the_floor_and_the_tier(tmp_path: Path) -> None:
    """30 h tasks need checkpoints on a typical GPU (assess), but on capability 9.0 GPUs they fit
    the 24 h tier: recommend says exactly that."""
    d = yaml.safe_load((REPO / "examples" / "workloads" / "2_many_architectures.yaml").read_text())
    d["tasks"] = 10
    d["per_task"]["gpu_hours"] = 30
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(d))
    workload = load_workload_or_profile(path)
    alone = assess(workload, load_pool("chtc"))
    assert alone.verdict == "htc-able-with-checkpointing"
    rec = recommend(workload, "chtc", replications=2, seed=1)
    assert rec.request is not None and rec.request.checkpoint_interval_minutes is None
    assert rec.verdict == "htc-able"
    out = rec.to_dict()
    check_consistent(out, alone.verdict)
    fact = out["verdict_differs_from_assess"]
    cap, tier = rec.request.gpus_minimum_capability, rec.request.job_length
    assert cap is not None and tier is not None
    assert f"restricted to capability {cap:g} and above" in fact
    assert f"{load_pool('chtc').tier(tier).max_hours:.1f} h {tier} tier" in fact
