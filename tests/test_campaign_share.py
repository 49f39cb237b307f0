"""A large campaign against a busy pool: the GPUs it holds at once stay within its tier's per-user
limit, and the share of the pool it is reported to hold is the one its per-task frame gives."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from advisor.recommend.evaluate import evaluate
from simulator.engine import run
from simulator.pool import load_pool
from simulator.replicate import replication_seeds
from simulator.scenario import Scenario

WARMUP = 24.0


def campaign(tier: str, tasks: int = 300, work: float = 4.0, load: float = 0.7) -> Scenario:
    """`tasks` single-GPU jobs of `work` hours (capability ≥ 8.0: every job fits its tier) on CHTC's `tier`, submitted at once after a warm-up
    while 20 other users keep `load` of the shared GPUs busy, under fair share."""
    pool = load_pool("chtc")
    rate = load * pool.shared_gpus / 6.0
    return Scenario.from_dict({
        "name": f"campaign on {tier}", "seed": 3, "warmup_hours": WARMUP, "pool": "chtc",
        "fair_share": {"half_life_hours": 24},
        "workload": {"name": "campaign", "tasks": tasks, "start_hours": WARMUP,
                     "work_hours": {"dist": "fixed", "value": work},
                     "request": {"gpus": 1, "cpus": 1, "memory_gb": 8, "min_capability": 8.0,
                                     "job_length": tier}},
        "background": {"name": "other-users", "users": 20,
                       "arrival": {"dist": "exponential", "mean": 1.0 / rate},
                       "work_hours": {"dist": "lognormal", "mean": 6.0, "cv": 1.5},
                       "request": {"gpus": 1, "cpus": 1, "memory_gb": 4, "job_length": "medium"}},
    })


def most_held_at_once(trace: pd.DataFrame) -> int:
    """The most GPUs the workload's jobs held at once (ends before starts at the same instant)."""
    t = trace[trace["task"] & trace["event"].isin(["start", "end"])]
    sign = np.where(t["event"] == "start", 1, -1)
    order = np.lexsort((sign, t["time_hours"].to_numpy()))
    held = np.cumsum((sign * t["units"].to_numpy())[order])
    return int(held.max()) if len(held) else 0


def share_from_frame(tasks: pd.DataFrame, gpus: int) -> float:
    counted = tasks[tasks["submit_hours"] >= WARMUP]
    used = counted[["good_gpu_hours", "lost_gpu_hours", "overhead_gpu_hours"]].to_numpy().sum()
    span = counted["finish_hours"].max() - counted["submit_hours"].min()
    return float(used / (gpus * span))


@pytest.mark.parametrize("tier", ["medium", "short"])
def test_campaign_never_holds_more_than_its_tiers_per_user_limit(tier: str) -> None:
    pool = load_pool("chtc")
    limit = pool.user_gpu_limit(pool.tier(tier))
    assert limit < 300, "the campaign must want more GPUs than the limit grants"
    r = run(campaign(tier), 1, trace=True)
    assert r.summary["tasks_completed"] == r.summary["tasks"] == 300
    assert r.trace is not None
    held = most_held_at_once(r.trace)
    assert 0 < held <= limit, (held, limit)
    gpus = sum(s.count for s in pool.slots)
    share = r.summary["gpu_share"]
    assert share == pytest.approx(share_from_frame(r.tasks, gpus), rel=1e-9)
    # never more than the limit's share of all the pool's GPUs, on average
    assert 0 < share <= limit / gpus + 1e-9


def test_a_busier_pool_leaves_the_campaign_a_smaller_share_and_a_later_finish() -> None:
    quiet = run(campaign("short", load=0.2), 1).summary
    busy = run(campaign("short", load=0.9), 1).summary
    assert busy["makespan_hours"] > quiet["makespan_hours"]
    assert busy["gpu_share"] < quiet["gpu_share"]


def test_evaluate_reports_the_mean_share_of_its_replications() -> None:
    scn = campaign("medium", tasks=120)
    out = evaluate(scn, 1.0, 2, 5)
    pool = load_pool("chtc")
    gpus = sum(s.count for s in pool.slots)
    shares = [share_from_frame(run(scn, ss).tasks, gpus) for ss in replication_seeds(5, 2)]
    assert math.isfinite(out.gpu_share)
    assert out.gpu_share == pytest.approx(float(np.mean(shares)), rel=1e-9)
    assert out.to_dict()["gpu_share"] == out.gpu_share


def resumable_campaign(load: float, owners: float, backfill_users: bool) -> Scenario:
    """The short-tier campaign, resumable (so it may use owned GPUs as backfill), with the owners
    using `owners` of their GPUs and, if `backfill_users`, 20 more users keeping `load` of the
    owners' idle GPUs busy with resumable jobs (3 h on average)."""
    d = campaign("short", tasks=600, load=load).to_dict()
    d["workload"]["request"]["is_resumable"] = True
    d["owner_busy_fraction"] = owners
    if backfill_users:
        owned = sum(s.count for s in load_pool("chtc").slots if s.backfill_only)
        d["background"] = [d["background"], {
            "name": "backfill-users", "users": 20,
            "arrival": {"dist": "exponential", "mean": 3.0 / (load * owned * (1 - owners))},
            "work_hours": {"dist": "lognormal", "mean": 3.0, "cv": 1.0},
            "request": {"gpus": 1, "cpus": 1, "memory_gb": 4, "is_resumable": True,
                        "job_length": "medium"}}]
    return Scenario.from_dict(d)


def test_a_resumable_campaign_gets_what_owners_and_other_users_leave() -> None:
    # Fair share is work-conserving: other users, whose priority is better than the campaign's,
    # get what they ask for; the campaign gets the rest of what it may use. With 70% of the
    # shared GPUs and 70% of the owners' idle GPUs asked for by others and owners busy half the
    # time, that is 0.3 × (122 + 0.5 × 150) of 272 GPUs = 0.217, not every idle GPU.
    pool = load_pool("chtc")
    shared = sum(s.count for s in pool.slots if not s.backfill_only)
    owned = sum(s.count for s in pool.slots if s.backfill_only)
    expected = (1 - 0.7) * (shared + 0.5 * owned) / (shared + owned)
    contested = run(resumable_campaign(0.7, 0.5, True), 1).summary
    assert contested["gpu_share"] == pytest.approx(expected, rel=0.15)
    assert contested["owner_busy_fraction"] == pytest.approx(0.5, abs=0.05)
    # without owners of their own and competitors on backfill, it would take far more
    alone = run(resumable_campaign(0.7, 0.0, False), 1).summary
    assert alone["gpu_share"] > 2 * contested["gpu_share"]
    assert alone["makespan_hours"] < contested["makespan_hours"]


def test_recommend_puts_other_users_on_backfill_only_where_there_are_owned_gpus() -> None:
    from advisor.recommend.evaluate import background

    for name, want in (("chtc", ["other-users", "other-users-backfill"]), ("ospool", ["other-users"])):
        pool = load_pool(name)
        entries = background(pool, 0.6, {s.gpu: 1.0 for s in pool.slots})
        assert [e["name"] for e in entries] == want
        if name == "chtc":
            backfill = entries[1]
            assert backfill["request"]["is_resumable"] is True
            idle = (1 - pool.owner_busy_fraction) * sum(s.count for s in pool.slots if s.backfill_only)
            # arrivals × mean work = 60% of the owners' idle GPUs
            rate = 1.0 / backfill["arrival"]["mean"]
            assert rate * backfill["work_hours"]["mean"] == pytest.approx(0.6 * idle)
