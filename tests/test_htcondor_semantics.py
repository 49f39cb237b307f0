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
