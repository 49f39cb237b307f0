"""One home per rule: the pool answers its own questions (transfer route, GPUs per server, tier
limits, checkpoint guidance), theory owns the wall-time formulas, the gates own the capability
thresholds, one runner runs every batch of simulations, and the words people read are built
from the constants the code uses. Each test feeds a rule a value no copy could share by accident
(routes out of order, a pool with other numbers) and checks every user of the rule agrees."""

from __future__ import annotations

import importlib
import math
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

import simulator.catalog as catalog_module
from advisor.assess import assess
from advisor.check import check_text
from advisor.cli import main
from advisor.emit.htcondor import plan_transfers
from advisor.errors import ConfigError, DomainFailure
from advisor.predict import gates
from advisor.recommend import _checkpoint_story
from advisor.recommend.candidates import Candidate, CheckpointCosts, Space
from advisor.recommend.sizing import minimum_cpus, precision_gate
from advisor.request import DataFile, JobSpec
from advisor.units import fmt_hours
from advisor.whatif import compare
from advisor.workload import load_workload, workload_from_dict
from simulator import Scenario, replicate, theory
from simulator.catalog import describe_speed_model
from simulator.pool import load_pool, pool_from_dict
from simulator.shipped import shipped_path

WORKLOADS = Path(__file__).resolve().parents[1] / "examples" / "workloads"
SIZES_GB = (0.2, 1.0, 5.0, 30.0, 64.0, 250.0)


def chtc_dict(**changes: Any) -> dict[str, Any]:
    raw = yaml.safe_load(shipped_path("pool", "chtc").read_text())
    if "name" in changes:
        raw.pop("title", None)   # a renamed copy is no longer "CHTC" in sentences
    raw.update(changes)
    return raw


def workload(**per_task: Any) -> Any:
    raw = yaml.safe_load((WORKLOADS / "2_many_architectures.yaml").read_text())
    raw["per_task"].update(per_task)
    return workload_from_dict(raw, base_dir=WORKLOADS)


# --- the transfer route ---------------------------------------------------------------------

def _assess_data_text(pool: Any, size_gb: float) -> str:
    a = assess(workload(input_gb=size_gb), pool)
    data = [c for c in a.checks if c.rule == "data" and "Per-task input" in c.text]
    assert len(data) == 1, [c.text for c in a.checks if c.rule == "data"]
    return " ".join([data[0].text, *data[0].advice])


def _check_fix(pool: Any, size_gb: float, tmp_path: Path) -> str | None:
    big = tmp_path / f"data_{size_gb:g}.bin"
    with big.open("wb") as fh:          # sparse: the size is what counts, not the disk
        fh.truncate(int(size_gb * 1024 ** 3))
    text = "\n".join(["executable = run.sh", "request_cpus = 1", "request_memory = 4GB",
                      "request_disk = 400GB", f"transfer_input_files = {big.name}", "queue"]) + "\n"
    report = check_text(text, pool, path=str(tmp_path / "job.sub"))
    found = [f for f in report.findings if f.code == "large-input"]
    big.unlink()
    return found[0].fix if found else None


def test_routes_listed_out_of_order_give_the_same_route_everywhere(tmp_path: Path) -> None:
    ordered = load_pool("chtc")
    rules = list(chtc_dict()["data_rules"])
    shuffled_rules = rules[::-1]
    random.Random(3).shuffle(shuffled_rules)
    assert shuffled_rules != rules
    shuffled = pool_from_dict(chtc_dict(data_rules=shuffled_rules), source="shuffled")
    smallest = ordered.transfer_route(0.0)
    assert smallest is not None and smallest.method == "transfer_input_files"
    for size in SIZES_GB:
        route = ordered.transfer_route(size)
        assert route is not None
        assert shuffled.transfer_route(size) == route, size
        for pool in (ordered, shuffled):
            # assess: the route's own words; emit: the route's method; check: the route as the fix
            assert route.how in _assess_data_text(pool, size), (size, pool.data_rules)
            job = JobSpec(name="t", inputs=(DataFile("inputs.tar.gz", size),))
            assert [t.method for t in plan_transfers(job, pool)] == [route.method]
            fix = _check_fix(pool, size, tmp_path)
            if route is smallest:
                assert fix is None, size
            else:
                assert fix == f"use {route.method}: {route.how}.", size
    assert [ordered.transfer_route(s).method for s in SIZES_GB] == [  # type: ignore[union-attr]
        "transfer_input_files", "transfer_input_files", "osdf", "osdf", "staging", "facilitator"]


def test_no_route_for_a_size_is_none_and_check_says_how_far_to_split(tmp_path: Path) -> None:
    capped = pool_from_dict(chtc_dict(data_rules=[
        {"max_gb": 20, "method": "osdf", "how": "osdf:///x/FILE"},
        {"max_gb": 2, "method": "transfer_input_files", "how": "FILE"}]), source="capped")
    assert capped.transfer_route(1.0).method == "transfer_input_files"  # type: ignore[union-attr]
    assert capped.transfer_route(21.0) is None
    assert _check_fix(capped, 21.0, tmp_path) == "split it into files of at most 20 GB (the pool's largest route)."


# --- GPUs per server ------------------------------------------------------------------------

@pytest.mark.parametrize("servers, most", [(None, 8), (2, 10)])
def test_gpus_per_server_is_one_answer_for_assess_and_check(servers: int | None, most: int) -> None:
    slots: list[dict[str, Any]] = [{"gpu": "L40S", "count": 20}, {"gpu": "A100-SXM4-80GB", "count": 6}]
    if servers:
        slots[0]["servers"] = servers
    pool = pool_from_dict({"name": "srv", "slots": slots})
    assert pool.max_gpus_per_server == most
    assert pool.gpus_per_server(pool.slots[1]) == 6          # never more than the class has
    too_many = assess(workload(gpus=most + 1), pool)
    gpus = next(c for c in too_many.checks if c.rule == "gpus")
    assert gpus.status == "fail" and gpus.numbers["max"] == most
    assert next(c for c in assess(workload(gpus=most), pool).checks if c.rule == "gpus").status != "fail"
    sub = "\n".join(["executable = run.sh", "request_cpus = 1", "request_memory = 4GB",
                     "request_disk = 4GB", f"request_gpus = {most + 1}", "queue"]) + "\n"
    no_match = [f for f in check_text(sub, pool).findings if f.code == "no-match"]
    assert no_match and f"request at most {most} GPUs per job" in no_match[0].fix
    fits = sub.replace(f"request_gpus = {most + 1}", f"request_gpus = {most}")
    assert not [f for f in check_text(fits, pool).findings if f.code == "no-match"]


# --- tier limits and the checkpoint guidance -------------------------------------------------

def test_tier_limits_are_the_pools() -> None:
    pool = load_pool("chtc")
    assert pool.shortest_tier(11.0).name == "short"  # type: ignore[union-attr]
    assert pool.shortest_tier(13.0).name == "medium"  # type: ignore[union-attr]
    assert pool.shortest_tier(1000.0) is None
    assert pool.user_gpu_limit(pool.tier("long")) == 4
    assert pool.user_gpu_limit(pool.tier("short")) == math.floor(0.6667 * pool.shared_gpus)
    assert pool.user_gpu_limit(None) == pool.shared_gpus
    g = pool.checkpoint_guidance
    assert g is not None and (g.min_hours, g.max_hours, g.hard_max_hours) == (1, 5, 10)
    assert load_pool("ospool").checkpoint_guidance is None


@pytest.mark.parametrize("tau, expect", [
    (1.0, "shorter than mypool's 2–6 h guidance"),
    (3.0, "lies within mypool's 2–6 h guidance"),
    (8.0, "longer than mypool's 2–6 h guidance: nothing evicts these jobs, so each checkpoint only "
          "costs time; keep it under the 12 h maximum."),
])
def test_checkpoint_explanation_reads_the_pools_name_and_guidance(tau: float, expect: str) -> None:
    limits = {"checkpoint_interval_hours": {"min": 2, "max": 6, "hard_max": 12}}
    pool = pool_from_dict(chtc_dict(name="mypool", limits=limits), source="mypool")
    w = load_workload(WORKLOADS / "2_many_architectures.yaml")
    space = Space(w, pool, [], None, 1, CheckpointCosts(40 / 3600, 70 / 3600))
    story = _checkpoint_story(space, Candidate(8.0, "long", False, tau), pool)
    assert expect in story["explanation"]
    assert "CHTC" not in story["explanation"]


def test_checkpoint_explanation_without_a_hard_maximum_names_none() -> None:
    limits = {"checkpoint_interval_hours": {"min": 2, "max": 6}}
    pool = pool_from_dict(chtc_dict(name="mypool", limits=limits), source="mypool")
    w = load_workload(WORKLOADS / "2_many_architectures.yaml")
    space = Space(w, pool, [], None, 1, CheckpointCosts(40 / 3600, 70 / 3600))
    text = _checkpoint_story(space, Candidate(8.0, "long", False, 8.0), pool)["explanation"]
    assert text.endswith("so each checkpoint only costs time.") and "maximum" not in text


@pytest.mark.parametrize("limits, advice", [
    (None, "checkpoint every 1-5 h (CHTC's guidance)"),
    ({"checkpoint_interval_hours": {"min": 2, "max": 6}, "backfill_suited_below_hours": 6},
     "checkpoint every 2-6 h (p3's guidance)"),
    ({"backfill_suited_below_hours": 6}, "checkpoint regularly"),
])
def test_check_advises_the_pools_checkpoint_interval(limits: dict[str, Any] | None, advice: str) -> None:
    pool = load_pool("chtc") if limits is None else pool_from_dict(chtc_dict(name="p3", limits=limits))
    sub = "\n".join(["executable = run.sh", "request_cpus = 1", "request_memory = 4GB",
                     "request_disk = 4GB", "request_gpus = 1", '+GPUJobLength = "short"', "queue"]) + "\n"
    found = [f for f in check_text(sub, pool).findings if f.code == "long-without-checkpoint"]
    assert found and found[0].fix.startswith(advice + ": `checkpoint_exit_code = 85`")


def test_minimum_cpus_come_from_the_pool() -> None:
    assert minimum_cpus(load_pool("chtc")) == (1, "CHTC's")
    assert minimum_cpus(pool_from_dict(chtc_dict(name="p2", limits={"min_request_cpus": 2}))) == (2, "p2's")
    assert minimum_cpus(load_pool("ospool")) == (1, "HTCondor's default")


# --- wall times: theory's formulas ----------------------------------------------------------

def test_eviction_check_uses_theorys_wall_time_without_checkpoints() -> None:
    pool = load_pool("ospool")             # every slot may be preempted
    a = assess(load_workload(WORKLOADS / "4_catdog.yaml"), pool)
    hours = a.facts["task_hours"]["typical"]
    mtte = min(s.time_to_eviction.mean for s in pool.slots if s.time_to_eviction)
    wall = theory.no_checkpoint_wall_time(hours, 0.0, mtte)
    assert a.facts["eviction_overhead_without_checkpoints"] == pytest.approx(wall / hours - 1, rel=1e-12)
    eviction = next(c for c in a.checks if c.rule == "eviction")
    assert f"takes {fmt_hours(wall)} on average" in eviction.text


def test_wall_times_too_large_for_a_float_are_infinite_and_said_so() -> None:
    assert theory.segment_wall_time(1e4, 1.0, 0.0) == math.inf
    assert theory.no_checkpoint_wall_time(1e4, 0.1, 1.0) == math.inf
    assert theory.in_place_expected_wall_time(1e4, 2000.0, 0.1, 0.1, 0.0, 1.0) == math.inf
    assert theory.daly_wall_time(1e4, 0.5, 0.01, 0.01, 1.0) < math.inf
    pool = load_pool("ospool")
    a = assess(workload(gpu_hours=20_000.0), pool)    # ~1000 mean times to eviction per task
    assert a.facts["eviction_overhead_without_checkpoints"] == math.inf
    eviction = next(c for c in a.checks if c.rule == "eviction")
    assert "never finishes, in practice" in eviction.text and "inf" not in eviction.text


def test_exit_85_formulas_have_one_home() -> None:
    from advisor.report import plots

    assert plots.in_place_expected_wall_time is theory.in_place_expected_wall_time
    assert not hasattr(plots, "segment_wall_time")


# --- capability gates ------------------------------------------------------------------------

@pytest.mark.parametrize("precision, gate", [("bf16", gates.BF16_MIN), ("fp8", gates.FP8_MIN),
                                             ("fp32", None)])
def test_precision_gates_are_the_gate_constants(precision: str, gate: float | None) -> None:
    cap, why = precision_gate(workload(precision=precision))
    assert cap == gate
    if gate is not None:
        assert why is not None and f"capability {gate:.1f}" in why


# --- one Dask runner -----------------------------------------------------------------------

SMALL = {"name": "small", "seed": 4,
         "pool": {"name": "p", "slots": [{"gpu": "A100-SXM4-80GB", "count": 2}]},
         "workload": {"tasks": 10, "arrival": {"dist": "exponential", "mean": 0.5},
                      "work_hours": {"dist": "exponential", "mean": 1.0}}}


def test_too_few_replications_is_one_error_for_replicate_and_whatif() -> None:
    sc = Scenario.from_dict(SMALL)
    errors = []
    for call in (lambda: replicate(sc, 0, workers=0), lambda: compare(sc, [], 0, workers=0)):
        with pytest.raises(ConfigError) as err:
            call()
        errors.append(str(err.value))
    assert errors[0] == errors[1] and "replications = 0" in errors[0]


@pytest.mark.parametrize("address, error", [("tcp://127.0.0.1:9", DomainFailure),   # nothing listens
                                            ("tcp://[::1", ConfigError)])           # not an address
def test_a_bad_scheduler_is_one_error_for_replicate_and_whatif(
        address: str, error: type[Exception], monkeypatch: pytest.MonkeyPatch) -> None:
    # the module, not the `replicate` function simulator/__init__ exports under the same name
    monkeypatch.setattr(importlib.import_module("simulator.replicate"), "SCHEDULER_TIMEOUT_S", 0.5)
    sc = Scenario.from_dict(SMALL)
    messages = []
    for call in (lambda: replicate(sc, 2, scheduler=address),
                 lambda: compare(sc, [], 2, scheduler=address)):
        with pytest.raises(error) as err:
            call()
        messages.append(str(err.value))
    assert messages[0] == messages[1] and address in messages[0]


def test_unreachable_scheduler_is_exit_1_for_simulate_and_whatif(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    address = "tcp://127.0.0.1:9"
    errors = []
    for argv in (["simulate", str(path), "-r", "2", "--scheduler", address],
                 ["whatif", str(path), "--vary", "pool.slots.A100.count=+1", "-r", "2",
                  "--scheduler", address]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err and address in err
        errors.append(err)
    assert errors[0] == errors[1]


# --- words from the code -------------------------------------------------------------------

def test_speed_model_words_follow_its_constants(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    words = describe_speed_model()
    share = catalog_module.TYPICAL_COMPUTE_SHARE
    assert f"{share:.0%}" in words and f"{1 - share:.0%}" in words and "half" not in words
    monkeypatch.setattr(catalog_module, "TYPICAL_COMPUTE_SHARE", 0.4)
    assert "40%" in describe_speed_model() and "60%" in describe_speed_model()
    assert main(["assess", str(WORKLOADS / "2_many_architectures.yaml")]) == 0
    caption = " ".join(capsys.readouterr().out.split())
    assert "40% of a step scales with compute" in caption and "60% with memory bandwidth" in caption


def test_formatting_and_formulas_are_imported_not_copied() -> None:
    import advisor.assess.rules as rules
    import advisor.commands.assess as cmd_assess
    import advisor.commands.recommend as cmd_recommend
    recommend = importlib.import_module("advisor.recommend.explain")
    import advisor.report.sections as sections

    for module in (rules, cmd_assess, cmd_recommend, recommend, sections):
        assert module.fmt_hours is fmt_hours, module.__name__
    assert rules.no_checkpoint_wall_time is theory.no_checkpoint_wall_time
    assert not hasattr(rules, "expected_wall_without_checkpoints")
