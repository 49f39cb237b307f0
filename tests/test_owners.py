"""Owners using their own GPUs (simulator.owners) against closed forms, and a campaign's share of
the pool under fair share: what its priority earns, not all that is idle."""

from __future__ import annotations

from typing import Any

import pytest

from simulator.engine import run
from simulator.errors import ConfigError
from simulator.pool import load_pool
from simulator.scenario import Scenario

IDLE_MEAN = 8.0


def owned_pool(gpus: int = 40, fraction: float | None = 0.5) -> dict[str, Any]:
    eviction: dict[str, Any] = {"owned": {"time_to_eviction": {"dist": "exponential", "mean": IDLE_MEAN}}}
    if fraction is not None:
        eviction["owner_busy_fraction"] = fraction
    return {"name": "lab", "slots": [{"gpu": "L40S", "count": gpus, "owner": "lab"}],
            "eviction": eviction}


def scenario(pool: dict[str, Any], *, horizon: float, warmup: float = 0.0,
             backfill_rate: float | None = None, **extra: Any) -> Scenario:
    """One late resumable task (so that only owners and backfill run until `horizon`), and
    optionally other users' resumable 1 h jobs arriving at `backfill_rate` per hour."""
    d: dict[str, Any] = {
        "name": "owners", "seed": 7, "pool": pool, "warmup_hours": warmup, "horizon_hours": horizon,
        "workload": {"tasks": 1, "start_hours": horizon * 0.999, "work_hours": 0.01, "reference_gpu": "L40S",
                     "request": {"gpus": 1, "is_resumable": True}},
        **extra,
    }
    if backfill_rate is not None:
        d["background"] = {"users": 5, "arrival": {"dist": "exponential", "mean": 1.0 / backfill_rate},
                           "work_hours": {"dist": "fixed", "value": 1.0},
                           "request": {"gpus": 1, "is_resumable": True}}
    return Scenario.from_dict(d)


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.8])
def test_owners_hold_their_busy_fraction_of_their_gpus(fraction: float) -> None:
    # 40 GPUs × 3000 h of alternating idle (mean 8 h) and busy periods: the time-average share
    # the owners hold is f within a few standard errors (~0.01)
    r = run(scenario(owned_pool(fraction=fraction), horizon=3000.0, warmup=100.0))
    assert r.summary["owner_busy_fraction"] == pytest.approx(fraction, abs=0.03)


def test_owners_start_in_equilibrium() -> None:
    # the first two hours, with no warm-up, already show f (1000 GPUs: standard error ~0.016)
    r = run(scenario(owned_pool(gpus=1000, fraction=0.5), horizon=2.0))
    assert r.summary["owner_busy_fraction"] == pytest.approx(0.5, abs=0.05)


def test_owner_busy_hours_gives_the_fraction_b_over_i_plus_b() -> None:
    # busy periods of mean 2 h after idle periods of mean 8 h: f = 2 / (8 + 2) = 0.2
    r = run(scenario(owned_pool(fraction=None), horizon=3000.0, warmup=100.0,
                     owner_busy_hours={"dist": "exponential", "mean": 2.0}))
    assert r.summary["owner_busy_fraction"] == pytest.approx(0.2, abs=0.02)


def test_saturating_backfill_gets_what_the_owners_leave() -> None:
    # other users' resumable jobs always waiting: the owners still hold f of their GPUs (they
    # evict backfill when they come back) and backfill fills the rest
    sc = scenario(owned_pool(fraction=0.5), horizon=1500.0, warmup=100.0, backfill_rate=80.0)
    r = run(sc)
    owners = r.summary["owner_busy_fraction"]
    backfill = r.summary["pool_utilization"]
    assert owners == pytest.approx(0.5, abs=0.04)
    assert backfill == pytest.approx(1.0 - owners, abs=0.03)


def test_without_a_fraction_owners_only_evict() -> None:
    r = run(scenario(owned_pool(fraction=0.0), horizon=500.0, backfill_rate=80.0))
    assert r.summary["owner_busy_fraction"] == 0.0
    assert r.summary["pool_utilization"] > 0.97


def test_the_scenario_refuses_both_owner_keys() -> None:
    with pytest.raises(ConfigError) as e:
        scenario(owned_pool(), horizon=10.0, owner_busy_fraction=0.3,
                 owner_busy_hours={"dist": "exponential", "mean": 2.0})
    assert e.value.field == "owner_busy_fraction"


def test_the_scenario_overrides_the_pools_fraction() -> None:
    sc = scenario(owned_pool(fraction=0.5), horizon=10.0, owner_busy_fraction=0.2)
    assert sc.owner_busy_fraction == 0.2
    busy = sc.owner_busy(sc.pool.slots[0])
    assert busy is not None and busy.mean == pytest.approx(IDLE_MEAN * 0.2 / 0.8)


def test_chtc_names_its_owners_fraction_as_an_assumption() -> None:
    pool = load_pool("chtc")
    assert 0 < pool.owner_busy_fraction < 1
    assert any("owner_busy_fraction" in a for a in pool.assumptions)


# --- fair share: the share a campaign's priority earns -----------------------------------------

def shared_pool(gpus: int = 20) -> dict[str, Any]:
    return {"name": "shared", "slots": [{"gpu": "L40S", "count": gpus}]}


def campaign_share(background_users: int, background_rate: float, gpus: int = 20,
                   horizon: float = 600.0, start: float = 48.0) -> float:
    """The share of `gpus` the campaign (far more 1 h jobs than the pool can run) held from its
    submission to the horizon, against `background_users` users submitting 1 h jobs at
    `background_rate` per hour in all, under fair share (24 h half-life)."""
    sc = Scenario.from_dict({
        "name": "campaign", "seed": 11, "pool": shared_pool(gpus), "warmup_hours": start,
        "horizon_hours": horizon, "fair_share": {"half_life_hours": 24},
        "workload": {"tasks": int(gpus * horizon), "start_hours": start, "work_hours": 1.0,
                     "reference_gpu": "L40S",
                     "request": {"gpus": 1}},
        "background": {"users": background_users,
                       "arrival": {"dist": "exponential", "mean": 1.0 / background_rate},
                       "work_hours": {"dist": "fixed", "value": 1.0}, "request": {"gpus": 1}},
    })
    tasks = run(sc).tasks
    used = tasks[["good_gpu_hours", "lost_gpu_hours", "overhead_gpu_hours"]].to_numpy().sum()
    return float(used / (gpus * (horizon - start)))


def test_a_campaign_gets_what_others_leave_when_they_ask_for_less_than_their_share() -> None:
    # 20 users asking for 60% of the GPUs in all (3% each, far below an equal share): fair share
    # is work-conserving, so the campaign gets the rest, 40%
    share = campaign_share(background_users=20, background_rate=0.6 * 20)
    assert share == pytest.approx(0.4, abs=0.04)


@pytest.mark.parametrize("users", [1, 3])
def test_a_campaign_gets_an_equal_share_against_users_who_want_more(users: int) -> None:
    # every other user wants more than the pool (3 × its capacity in all): with equal priority
    # factors each of the users + 1 gets an equal share, the campaign too
    share = campaign_share(background_users=users, background_rate=3.0 * 20)
    assert share == pytest.approx(1.0 / (users + 1), abs=0.04)
