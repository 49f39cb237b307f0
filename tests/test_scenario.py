"""Scenario: parsing, validation messages, defaults, to_dict / with_overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator import CheckpointMode, ConfigError, Scenario, load_catalog
from simulator.shipped import shipped_path

REPO = Path(__file__).resolve().parents[1]


def small(**extra) -> dict:
    d = {"pool": {"name": "p", "slots": [{"gpu": "A100-SXM4-80GB", "count": 2}]},
         "workload": {"tasks": 3, "work_hours": 2.0}}
    d.update(extra)
    return d


@pytest.mark.parametrize("name", ["mmc", "daly", "chtc_catdog"])
def test_shipped_scenarios_load(name: str) -> None:
    sc = Scenario.from_yaml(shipped_path("scenario", name))
    assert sc.name == name
    assert sc.workload.tasks >= 1


def test_defaults_and_speed_factors_from_the_catalog() -> None:
    sc = Scenario.from_dict({"pool": "chtc", "workload": {"tasks": 5, "work_hours": 1.0,
                                                          "reference_gpu": "A100-SXM4-80GB",
                                                          "speed": {"L40": 0.9}}})
    cat = load_catalog()
    assert sc.speed("L40") == 0.9
    assert sc.speed("H200") == pytest.approx(cat.training_speed("H200", reference="A100-SXM4-80GB"))
    assert sc.speed("A100-SXM4-80GB") == 1.0
    assert sc.workload.checkpoint.mode is CheckpointMode.NONE
    assert sc.workload.arrival is None
    assert sc.fair_share_half_life_hours == 24.0
    assert sc.replications == 20 and sc.seed == 1


def test_checkpoint_units_and_modes() -> None:
    sc = Scenario.from_dict(small(workload={"tasks": 1, "work_hours": 5, "checkpoint": {
        "interval_minutes": 90, "cost_seconds": 36, "restart_seconds": 60, "transfer_seconds": 12}}))
    ck = sc.workload.checkpoint
    assert ck.mode is CheckpointMode.PERIODIC
    assert ck.interval_hours == 1.5
    assert ck.cost_hours == pytest.approx(0.01)
    assert ck.restart_hours == pytest.approx(72 / 3600)
    exit_mode = Scenario.from_dict(small(workload={"tasks": 1, "work_hours": 5, "checkpoint": {
        "mode": "exit", "interval_minutes": 60}}))
    assert exit_mode.workload.checkpoint.mode is CheckpointMode.EXIT


def test_unknown_key_names_field_and_suggests() -> None:
    with pytest.raises(ConfigError) as exc:
        Scenario.from_dict(small(warmup_hour=3))
    assert exc.value.field == "warmup_hour"
    assert "warmup_hours" in exc.value.suggestions
    with pytest.raises(ConfigError) as exc:
        Scenario.from_dict({"pool": "chtc", "workload": {"tasks": 1, "work_hours": 1,
                                                         "request": {"gpu_memory": 8}}})
    assert exc.value.field == "workload.request.gpu_memory"
    assert "gpu_memory_gb" in exc.value.suggestions


def test_bad_values_are_refused_with_a_fix() -> None:
    cases = [
        (small(workload={"tasks": 0, "work_hours": 1}), "workload.tasks"),
        (small(workload={"tasks": 2}), "workload.work_hours"),
        (small(workload={"tasks": 2, "work_hours": {"dist": "exponentail", "mean": 1}}),
         "workload.work_hours.dist"),
        (small(horizon_hours=5, warmup_hours=10), "horizon_hours"),
        (small(workload={"tasks": 1, "work_hours": 1, "checkpoint": {"mode": "exit"}}),
         "workload.checkpoint.interval_minutes"),
        (small(workload={"tasks": 1, "work_hours": 1, "checkpoint": {"mode": "often",
                                                                     "interval_minutes": 5}}),
         "workload.checkpoint.mode"),
        (small(background={"users": 3, "work_hours": 1}), "background.arrival"),
        (small(seed=-1), "seed"),
    ]
    for raw, field in cases:
        with pytest.raises(ConfigError) as exc:
            Scenario.from_dict(raw)
        assert exc.value.field == field, (field, str(exc.value))
        assert exc.value.fix


def test_unknown_tier_and_unmatchable_requests() -> None:
    with pytest.raises(ConfigError) as exc:
        Scenario.from_dict({"pool": "chtc", "workload": {"tasks": 1, "work_hours": 1,
                                                         "request": {"job_length": "shrot"}}})
    assert exc.value.field == "workload.request.job_length"
    assert "short" in exc.value.suggestions
    with pytest.raises(ConfigError) as exc:
        Scenario.from_dict(small(workload={"tasks": 1, "work_hours": 1,
                                           "request": {"gpu_memory_gb": 100}}))
    assert exc.value.field == "workload.request"
    assert "GPU memory" in str(exc.value)
    with pytest.raises(ConfigError) as exc:  # long tier: 4 GPUs per user
        Scenario.from_dict({"pool": "chtc", "workload": {"tasks": 1, "work_hours": 1, "request": {
            "gpus": 8, "job_length": "long"}}})
    assert exc.value.field == "workload.request.gpus"


def test_owned_only_pool_needs_is_resumable() -> None:
    pool = {"name": "owned", "slots": [{"gpu": "L40S", "count": 4, "owner": "lab"}]}
    with pytest.raises(ConfigError, match="is_resumable"):
        Scenario.from_dict({"pool": pool, "workload": {"tasks": 1, "work_hours": 1}})
    Scenario.from_dict({"pool": pool, "workload": {"tasks": 1, "work_hours": 1,
                                                   "request": {"is_resumable": True}}})


def test_scenario_eviction_applies_where_the_pool_is_silent() -> None:
    sc = Scenario.from_dict({"pool": "chtc", "eviction": {"time_to_eviction": {
        "dist": "weibull", "scale": 5, "shape": 0.8}}, "workload": {"tasks": 1, "work_hours": 1}})
    by_label = {s.label: sc.slot_eviction(s) for s in sc.pool.slots}
    assert by_label["A100-SXM4-80GB"] is None  # the pool says `shared: none`
    owned = by_label["A100-SXM4-80GB@research-groups"]
    assert owned is not None and owned.kind == "exponential"  # the pool's own figure
    inline = Scenario.from_dict(small(eviction={"time_to_eviction": {"dist": "exponential",
                                                                     "mean": 3}}))
    ev = inline.slot_eviction(inline.pool.slots[0])
    assert ev is not None and ev.mean == 3


def test_to_dict_round_trip_and_overrides() -> None:
    raw = small(background={"users": 4, "arrival": {"dist": "exponential", "mean": 1.0},
                            "work_hours": 2.0})
    sc = Scenario.from_dict(raw)
    assert Scenario.from_dict(sc.to_dict()) == sc
    v = sc.with_overrides({"workload.tasks": 9, "pool.slots[0].count": 5,
                           "workload.checkpoint.interval_minutes": 30,
                           "background.users": 7})
    assert v.workload.tasks == 9
    assert v.pool.total_gpus == 5
    assert v.workload.checkpoint.interval_hours == 0.5
    assert v.background[0].users == 7
    assert sc.workload.tasks == 3  # the original is untouched


def test_override_of_a_named_pool_expands_it() -> None:
    sc = Scenario.from_dict({"pool": "chtc", "workload": {"tasks": 1, "work_hours": 1}})
    v = sc.with_overrides({"pool.slots.3.count": 64})
    assert v.pool.slots[3].count == 64
    assert v.pool.total_gpus == sc.pool.total_gpus + 32
    with pytest.raises(ConfigError):
        sc.with_overrides({"pool.slots[99].count": 1})


def test_from_yaml_reports_the_file(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("workload: {tasks: 1, work_hours: 1}\nreplication: 3\n")
    with pytest.raises(ConfigError) as exc:
        Scenario.from_yaml(p)
    assert exc.value.source == str(p)
    assert "replications" in exc.value.suggestions
    p.write_text("workload: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Scenario.from_yaml(p)
