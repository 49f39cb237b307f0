"""advisor.whatif.keys: friendly --vary keys, values, and the errors they give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from advisor.cli import main
from advisor.errors import InputError
from advisor.whatif import make_variant
from advisor.whatif.keys import apply_change, parse_value, parse_variant, valid_keys
from simulator.pool import SlotClass
from simulator.scenario import Scenario
from simulator.shipped import shipped_path

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def catdog() -> Scenario:
    return Scenario.from_yaml(shipped_path("scenario", "chtc_catdog"))


def _slot(s: Scenario, label: str) -> SlotClass:
    return next(x for x in s.pool.slots if x.label == label)


@pytest.mark.parametrize(("text", "op", "value"), [
    ("+16", "add", 16), ("-2", "add", -2), ("*0.5", "mul", 0.5), ("true", "set", True),
    ("false", "set", False), ("12", "set", 12), ("0.25", "set", 0.25), ("short", "set", "short"),
    ("1e3", "set", 1000.0),
])
def test_values(text: str, op: str, value: object) -> None:
    assert parse_value(text) == (op, value)


def test_slot_by_gpu_prefix_prefers_the_shared_class(catdog: Scenario) -> None:
    # H100 is ambiguous in the catalog (PCIe, SXM5) but the pool has only H100-SXM5-80GB,
    # in a shared and an owned class: the shared one is meant.
    v = make_variant(catdog, "pool.slots.H100.count=+16")
    assert _slot(v.scenario, "H100-SXM5-80GB").count == 8 + 16
    assert _slot(v.scenario, "H100-SXM5-80GB@research-groups").count == 14
    assert v.changes == ["pool.slots[H100-SXM5-80GB].count: 8 → 24"]
    assert catdog.pool.total_gpus + 16 == v.scenario.pool.total_gpus  # the baseline is untouched


def test_slot_by_label_with_owner(catdog: Scenario) -> None:
    v = make_variant(catdog, "pool.slots.A100-SXM4-80GB@research-groups.count=*2")
    assert _slot(v.scenario, "A100-SXM4-80GB@research-groups").count == 96
    assert _slot(v.scenario, "A100-SXM4-80GB").count == 32


def test_slot_by_index_and_alias(catdog: Scenario) -> None:
    assert _slot(make_variant(catdog, "pool.slots[0].count=6").scenario, "P100-PCIE-16GB").count == 6
    v = make_variant(catdog, "pool.slots.NVIDIA H200.count=-4")
    assert _slot(v.scenario, "H200").count == 12


def test_tier_by_name(catdog: Scenario) -> None:
    v = make_variant(catdog, "pool.tiers.long.per_user_gpus=8; pool.tiers.SHORT.max_hours=6")
    assert v.scenario.pool.tier("long").per_user_gpus == 8
    assert v.scenario.pool.tier("short").max_hours == 6


def test_add_multiply_replace(catdog: Scenario) -> None:
    v = make_variant(catdog, "background.arrival.mean=*0.5; workload.tasks=+10; "
                             "workload.request.is_resumable=false; "
                             "workload.checkpoint.interval_minutes=120")
    s = v.scenario
    assert s.background[0].arrival.mean == pytest.approx(0.031)
    assert s.workload.tasks == 310
    assert s.workload.request.is_resumable is False
    assert s.workload.checkpoint.interval_hours == pytest.approx(2.0)
    assert len(v.changes) == 4


def test_mean_scales_any_distribution() -> None:
    d = {"pool": {"slots": [{"gpu": "L40", "count": 2}]},
         "workload": {"tasks": 3, "work_hours": {"dist": "empirical", "values": [1.0, 3.0]},
                      "arrival": 2.0},
         "background": [{"name": "a", "arrival": {"dist": "weibull", "scale": 2.0, "shape": 1.5},
                         "work_hours": 1.0},
                        {"name": "b", "arrival": {"dist": "exponential", "mean": 4.0},
                         "work_hours": 1.0}]}
    s = Scenario.from_dict(d)
    v = make_variant(s, "workload.work_hours.mean=*2; workload.arrival.mean=*0.5; "
                        "background.arrival.mean=*0.5")
    assert v.scenario.workload.work_hours.mean == pytest.approx(4.0)
    assert v.scenario.workload.arrival is not None and v.scenario.workload.arrival.mean == 1.0
    assert v.scenario.background[1].arrival.mean == 2.0  # every background entry
    assert v.scenario.background[0].arrival.p("scale") == 1.0
    one = make_variant(s, "background.b.arrival.mean=1")  # one entry by name
    assert [b.arrival.mean for b in one.scenario.background][1] == 1.0
    assert one.scenario.background[0].arrival.p("scale") == 2.0
    with pytest.raises(InputError, match="without a mean to set"):
        make_variant(s, "workload.work_hours.mean=3")


def test_pool_by_name_is_expanded() -> None:
    s = Scenario.from_dict({"pool": "ospool", "workload": {"tasks": 1, "work_hours": 1.0}})
    first = s.pool.slots[0]
    v = make_variant(s, f"pool.slots.{first.label}.count=+1")
    assert v.scenario.pool.slots[0].count == first.count + 1


@pytest.mark.parametrize(("text", "match"), [
    ("pool.slot.H100.count=+16", "Did you mean 'pool.slots.H100.count'"),
    ("workload.reqest.gpus=2", "Did you mean 'workload.request.gpus'"),
    ("pool.slots.H100.cuont=2", "Did you mean 'pool.slots.H100.count'"),
    ("pool.slots.V100.count=+16", "matches no GPU slot class of the pool .*H100-SXM5-80GB"),
    ("pool.slots.A100.count=+16", "ambiguous: it matches A100-SXM4-40GB, A100-SXM4-80GB"),
    ("pool.tiers.longg.max_hours=2", "Did you mean 'long'"),
    ("workload.name=*2", "not a number to multiply"),
    ("workload.request=3", "is a section"),
    ("workload.tasks", "is not KEY=VALUE"),
    ("workload.tasks=-1000", "workload.tasks"),
    ("seed=3", "shared by every variant"),  # validated like a scenario file
])
def test_bad_keys(catdog: Scenario, text: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        make_variant(catdog, text)


def test_cli_typo_exit_2_with_suggestion(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(shipped_path("scenario", "chtc_catdog"))
    assert main(["whatif", path, "--vary", "pool.slot.H100.count=+16", "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'pool.slots.H100.count'" in err and "Traceback" not in err
    assert main(["whatif", path, "--vary", "pool.slots.V100.count=+1", "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "L40S@research-groups" in err and "Traceback" not in err
    assert main(["whatif", path, "--workers", "0"]) == 2
    assert "nothing to compare" in capsys.readouterr().err


def test_changes_apply_in_place_and_keys_are_listed() -> None:
    d: dict[str, Any] = {"pool": {"slots": [{"gpu": "L40", "count": 2}]},
                         "workload": {"tasks": 1, "work_hours": 1}}
    (ch,) = parse_variant("workload.tasks=*3")
    assert apply_change(d, ch) == ["workload.tasks: 1 → 3"]
    assert d["workload"]["tasks"] == 3
    keys = valid_keys()
    assert "pool.slots.SEL.count" in keys and "background.arrival.mean" in keys
