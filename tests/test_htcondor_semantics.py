"""HTCondor's run-time behaviour as scenario and pool keys (docs/DOMAIN.md §3): defaults with
their source, overrides, and the errors that name field, value and fix."""

from __future__ import annotations

import math

import pytest

from simulator import ConfigError, Scenario
from simulator.pool import DEFAULT_GRACE_SECONDS, load_pool
from simulator.scenario import DEFAULT_RESTART_GAP_SECONDS, transfer_seconds

OWNED = {"name": "p", "slots": [{"gpu": "A100-SXM4-80GB", "count": 2},
                                {"gpu": "L40S", "count": 2, "owner": "lab"}]}


def scenario(**extra) -> Scenario:
    d = {"pool": OWNED, "workload": {"tasks": 2, "work_hours": 2.0}}
    for key, value in extra.items():
        if key in ("checkpoint", "request"):
            d["workload"][key] = value  # type: ignore[index]
        else:
            d[key] = value
    return Scenario.from_dict(d)


def test_chtc_enforces_four_tiers_with_mediumlong_as_an_assumption() -> None:
    pool = load_pool("chtc")
    assert [(t.name, t.max_hours) for t in pool.tiers] == [
        ("short", 12), ("medium", 24), ("mediumlong", 72), ("long", 168)]
    mediumlong = pool.tier("mediumlong")
    assert "assumption" in mediumlong.source and "JobRuntimeGuarantee" in mediumlong.source
    assert pool.user_gpu_limit(mediumlong) == 4
    assert any("mediumlong" in a for a in pool.assumptions)
    # a 30 h job now fits the 72 h tier, not the week-long one
    assert pool.shortest_tier(30).name == "mediumlong"  # type: ignore[union-attr]
    assert pool.resumable_at_tier_limit == "vacate"
    assert load_pool("ospool").resumable_at_tier_limit == "hold"


@pytest.mark.parametrize("name", ["chtc", "ospool"])
def test_shipped_pools_name_grace_and_restart_delay_with_a_source(name: str) -> None:
    pool = load_pool(name)
    assert pool.grace_seconds == DEFAULT_GRACE_SECONDS == 600
    assert pool.restart_delay is not None
    assert 30 <= pool.restart_delay.mean * 3600 <= 110   # typically 30-110 s (DOMAIN.md §3)
    from simulator.shipped import shipped_path
    text = shipped_path("pool", name).read_text()
    assert "restart_delay_hours" in text and "DOMAIN.md §3" in text


def test_shipped_restart_delay_is_the_one_default() -> None:
    from simulator.distributions import parse_distribution
    from simulator.pool import DEFAULT_RESTART_DELAY
    default = parse_distribution(DEFAULT_RESTART_DELAY, "default")
    for name in ("chtc", "ospool"):
        shipped = load_pool(name).restart_delay
        assert shipped is not None and default is not None
        assert shipped.mean == pytest.approx(default.mean, rel=1e-3)
        assert shipped.variance == pytest.approx(default.variance, rel=1e-2)


def test_scenario_defaults_come_from_the_pool_and_domain() -> None:
    sc = scenario(checkpoint={"mode": "exit", "interval_minutes": 60})
    ck = sc.workload.checkpoint
    assert ck.restart_gap_hours * 3600 == DEFAULT_RESTART_GAP_SECONDS
    assert 0 <= DEFAULT_RESTART_GAP_SECONDS <= 7
    assert ck.transfer_hours == 0.0 and ck.saves_on_sigterm is False
    assert sc.grace_seconds == 600
    assert sc.restart_delay is None   # an inline pool naming none: the idealised pool of the theory
    chtc = Scenario.from_dict({"pool": "chtc", "workload": {"tasks": 1, "work_hours": 1.0}})
    assert chtc.restart_delay is not None and chtc.restart_delay.mean * 3600 == pytest.approx(78, abs=1)
    assert sc.workload.request.requires_backfill is False


def test_checkpoint_transfer_follows_the_measured_rate() -> None:
    assert transfer_seconds(0.1) == pytest.approx(1.0)
    assert transfer_seconds(1.0) == pytest.approx(5.0)
    ck = scenario(checkpoint={"interval_minutes": 60, "size_gb": 1.0, "restart_seconds": 20}
                  ).workload.checkpoint
    assert ck.transfer_hours * 3600 == pytest.approx(5.0)
    assert ck.restart_hours * 3600 == pytest.approx(25.0)   # reload + transfer
    given = scenario(checkpoint={"interval_minutes": 60, "size_gb": 1.0, "transfer_seconds": 9}
                     ).workload.checkpoint
    assert given.transfer_hours * 3600 == pytest.approx(9.0)


def test_scenario_overrides_eviction_policy() -> None:
    sc = scenario(eviction={"grace_seconds": 30, "restart_delay_hours": {"dist": "fixed", "value": 0.05}})
    assert sc.grace_seconds == 30 and sc.restart_delay is not None
    assert sc.restart_delay.mean == pytest.approx(0.05)
    assert scenario(eviction={"restart_delay_hours": "none"}).restart_delay is None
    assert scenario(eviction={"restart_delay_hours": 0}).restart_delay is None
    pool = dict(OWNED, eviction={"grace_seconds": 120})
    sc = Scenario.from_dict({"pool": pool, "workload": {"tasks": 1, "work_hours": 1.0}})
    assert sc.grace_seconds == 120
    variant = Scenario.from_dict({"pool": "chtc", "workload": {"tasks": 1, "work_hours": 1.0}}
                                 ).with_overrides({"pool.limits.resumable_at_tier_limit": "hold"})
    assert variant.pool.resumable_at_tier_limit == "hold"


def test_requires_backfill_versus_is_resumable() -> None:
    sc = scenario(request={"is_resumable": True, "requires_backfill": True})
    assert sc.workload.request.requires_backfill and sc.workload.request.is_resumable
    assert "requires_backfill" in sc.workload.request.to_dict()
    assert "requires_backfill" not in scenario().workload.request.to_dict()  # JSON contract kept


@pytest.mark.parametrize("extra, field, words", [
    ({"request": {"requires_backfill": True}}, "workload.request.requires_backfill", "is_resumable"),
    ({"checkpoint": {"interval_minutes": 60, "restart_gap_seconds": -1}},
     "workload.checkpoint.restart_gap_seconds", "zero or more"),
    ({"checkpoint": {"interval_minutes": 60, "saves_on_sigterm": "yes"}},
     "workload.checkpoint.saves_on_sigterm", "true or false"),
    ({"checkpoint": {"interval_minutes": 60, "size_gb": "big"}}, "workload.checkpoint.size_gb", "number"),
    ({"eviction": {"grace_seconds": -5}}, "eviction.grace_seconds", "zero or more"),
    ({"eviction": {"restart_delay_hours": {"dist": "normal", "mean": 1}}},
     "eviction.restart_delay_hours.dist", "not a known distribution"),
    ({"eviction": {"grace": 600}}, "eviction.grace", "grace_seconds"),
])
def test_bad_values_name_field_value_and_fix(extra: dict, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as exc:
        scenario(**extra)
    assert exc.value.field == field
    assert words in str(exc.value)


def test_requires_backfill_on_a_pool_without_owned_gpus_is_refused() -> None:
    with pytest.raises(ConfigError) as exc:
        Scenario.from_dict({"pool": {"name": "p", "slots": [{"gpu": "L40", "count": 2}]},
                            "workload": {"tasks": 1, "work_hours": 1.0,
                                         "request": {"is_resumable": True, "requires_backfill": True}}})
    assert exc.value.field == "workload.request.requires_backfill"
    assert "no backfill" in str(exc.value)


def test_pool_eviction_keys_are_checked() -> None:
    with pytest.raises(ConfigError) as exc:
        load_pool(dict(OWNED, eviction={"grace_second": 600}))
    assert exc.value.field == "eviction.grace_second"
    with pytest.raises(ConfigError) as exc:
        load_pool(dict(OWNED, limits={"resumable_at_tier_limit": "requeue"}))
    assert exc.value.field == "limits.resumable_at_tier_limit"
    assert "vacate" in str(exc.value)
    assert math.isclose(load_pool(OWNED).grace_seconds, 600)


# --- the engine against closed forms on tiny scenarios -------------------------------------

from simulator import run, theory  # noqa: E402

GAP_S = 3.5


def one_gpu(workload: dict, *, tasks: int = 1, eviction: dict | None = None, pool: dict | None = None,
            **extra) -> Scenario:
    p = pool or {"name": "p", "slots": [{"gpu": "A100-SXM4-80GB", "count": tasks}]}
    d = {"pool": p, "workload": {"tasks": tasks, "reference_gpu": "A100-SXM4-80GB", **workload}, **extra}
    if eviction is not None:
        d["eviction"] = eviction
    return Scenario.from_dict(d)


def test_exit_85_restarts_in_place_without_a_new_start() -> None:
    ck = {"mode": "exit", "interval_minutes": 30, "cost_seconds": 60, "restart_seconds": 20,
          "size_gb": 1.0}
    sc = one_gpu({"work_hours": 2.2, "checkpoint": ck})
    r = run(sc, 1, trace=True)
    row = r.tasks.iloc[0]
    restart = (20 + 5.0) / 3600                         # reload + the 1 GB transfer
    expected = theory.in_place_wall_time(2.2, 0.5, 60 / 3600, restart, GAP_S / 3600)
    assert expected == pytest.approx(2.2 + 5 * 60 / 3600 + 4 * (GAP_S / 3600 + restart))
    assert row["finish_hours"] == pytest.approx(expected)
    assert row["starts"] == 1 and row["checkpoint_exits"] == 4 and row["total_wait_hours"] == 0
    trace = r.trace
    assert trace is not None
    assert (trace["event"] == "start").sum() == 1
    assert (trace["event"] == "restart_in_place").sum() == 4
    assert row["good_gpu_hours"] == pytest.approx(2.2)
    assert row["overhead_gpu_hours"] == pytest.approx(expected - 2.2)


def test_tier_clock_runs_across_in_place_restarts() -> None:
    """The claim's clock: held at 1 h although no run is 1 h long; a resumable job in a pool
    that vacates is requeued instead and its new claim starts the clock again."""
    tiers = [{"name": "t", "max_hours": 1.0, "default": True}]
    pool = {"name": "p", "slots": [{"gpu": "A100-SXM4-80GB", "count": 1}], "tiers": tiers}
    ck = {"mode": "exit", "interval_minutes": 15}
    g = GAP_S / 3600
    held = run(one_gpu({"work_hours": 1.5, "checkpoint": ck}, pool=pool), 1).tasks.iloc[0]
    assert held["state"] == "held" and held["holds"] == 1 and held["checkpoint_exits"] == 3
    assert held["good_gpu_hours"] == pytest.approx(0.75)
    assert held["lost_gpu_hours"] == pytest.approx(0.25 - 3 * g)
    vacating = {**pool, "limits": {"resumable_at_tier_limit": "vacate"}}
    sc = one_gpu({"work_hours": 1.5, "checkpoint": ck, "request": {"is_resumable": True}}, pool=vacating)
    row = run(sc, 1).tasks.iloc[0]
    # claim 1: exits at 0.25, 0.5+g, 0.75+2g, vacated at 1.0; claim 2: 0.75 h left, done at 1.75+2g
    assert row["state"] == "completed" and row["finish_hours"] == pytest.approx(1.75 + 2 * g)
    assert row["starts"] == 2 and row["evictions"] == 1 and row["checkpoint_exits"] == 5
    assert row["holds"] == 0


@pytest.mark.parametrize("cost_s, saves, finish, lost", [
    (180, True, 1.5 + 0.05 + 0.55 + 0.05, 0.0),             # saved on SIGTERM: nothing lost
    (180, False, 1.5 + 1.0 + 0.05, 0.45),                   # lost since the 1 h checkpoint
    (900, True, 1.5 + 600 / 3600 + 1.0 + 0.25, 0.25),       # the save outlasts the grace: killed
])
def test_eviction_grace_and_the_save_on_sigterm(cost_s: float, saves: bool, finish: float,
                                                 lost: float) -> None:
    """One eviction 1.5 h into each claim (fixed), periodic checkpoints every hour."""
    ck = {"mode": "periodic", "interval_minutes": 60, "cost_seconds": cost_s, "saves_on_sigterm": saves}
    sc = one_gpu({"work_hours": 2.0, "checkpoint": ck},
                 eviction={"time_to_eviction": {"dist": "fixed", "value": 1.5}, "grace_seconds": 600})
    row = run(sc, 1).tasks.iloc[0]
    assert row["evictions"] == 1 and row["state"] == "completed"
    assert row["finish_hours"] == pytest.approx(finish)
    assert row["lost_gpu_hours"] == pytest.approx(lost)
    assert row["good_gpu_hours"] == pytest.approx(2.0)


def test_restart_delay_adds_its_mean_per_eviction() -> None:
    """No checkpoints, exponential evictions: the mean wall time is M·e^{R/M}(e^{T/M} − 1) plus
    the delay's mean times the expected evictions (1 − e^{−T/M})·e^{(R+T)/M}."""
    tasks, work, mtbf, restart_s, delay = 4000, 3.0, 2.0, 300.0, 0.25
    expected_n = theory.no_checkpoint_evictions(work, restart_s / 3600, mtbf)
    base = theory.no_checkpoint_wall_time(work, restart_s / 3600, mtbf)
    for given, shift in ((0, 0.0), ({"dist": "exponential", "mean": delay}, delay)):
        sc = one_gpu({"work_hours": work, "checkpoint": {"restart_seconds": restart_s}}, tasks=tasks,
                     eviction={"time_to_eviction": {"dist": "exponential", "mean": mtbf},
                               "restart_delay_hours": given})
        t = run(sc, 2).tasks
        wall = t["finish_hours"].to_numpy()
        se = wall.std(ddof=1) / math.sqrt(tasks)
        assert abs(wall.mean() - (base + shift * expected_n)) < 4 * se
        assert t["evictions"].mean() == pytest.approx(expected_n, rel=0.06)


def test_exit_85_under_evictions_matches_the_renewal_formula() -> None:
    tasks, work, tau, mtbf = 3000, 6.0, 1.0, 4.0
    cost, restart, delay = 120 / 3600, 60 / 3600, 0.05
    ck = {"mode": "exit", "interval_minutes": tau * 60, "cost_seconds": 120, "restart_seconds": 60}
    sc = one_gpu({"work_hours": work, "checkpoint": ck}, tasks=tasks,
                 eviction={"time_to_eviction": {"dist": "exponential", "mean": mtbf},
                           "restart_delay_hours": {"dist": "fixed", "value": delay}})
    wall = run(sc, 4).tasks["finish_hours"].to_numpy()
    expected = theory.in_place_expected_wall_time(work, tau, cost, restart, GAP_S / 3600, mtbf, delay)
    se = wall.std(ddof=1) / math.sqrt(tasks)
    assert abs(wall.mean() - expected) < 4 * se
    # without evictions it is the plain in-place time
    assert theory.in_place_expected_wall_time(work, tau, cost, restart, 0.0, 1e9) == pytest.approx(
        theory.in_place_wall_time(work, tau, cost, restart, 0.0), rel=1e-6)


def test_requires_backfill_forces_owned_gpus_and_is_resumable_only_allows_them() -> None:
    pool = {"name": "p", "slots": [{"gpu": "A100-SXM4-80GB", "count": 2},
                                   {"gpu": "L40S", "count": 2, "owner": "lab"}]}
    eligible = run(one_gpu({"work_hours": 1.0, "request": {"is_resumable": True}}, tasks=2, pool=pool), 1)
    assert set(eligible.tasks["gpu_types"]) == {"A100-SXM4-80GB"}      # shared GPUs first
    forced = run(one_gpu({"work_hours": 1.0, "request": {"is_resumable": True, "requires_backfill": True}},
                         tasks=2, pool=pool), 1)
    assert set(forced.tasks["gpu_types"]) == {"L40S"}
