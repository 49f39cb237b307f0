"""`recommend` as three stages, each tested on its own: plan (what to simulate), evaluate (the
simulations, with common random numbers), explain (the choice and its reasons, from data alone);
and the report reads the recommendation as data, never calling back into it."""

from __future__ import annotations

import ast
import dataclasses
import math
from pathlib import Path

import pytest

import advisor.report
from advisor.errors import InputError
from advisor.recommend import Recommendation, recommend
from advisor.recommend.candidates import describe_daly, enumerate_candidates, refinements
from advisor.recommend.evaluate import Outcome
from advisor.recommend.explain import explain
from advisor.recommend.plan import MAX_REFINEMENTS, Plan, make_plan, plan_scenario
from advisor.recommend.simulate import Evaluated, choose, evaluate_candidate, evaluate_plan
from advisor.workload import load_workload_or_profile, workload_from_dict

REPO = Path(__file__).resolve().parents[1]
WORKLOADS = REPO / "examples" / "workloads"
REPORT_DIR = Path(advisor.report.__file__).parent


def _arch(tasks: int = 4, gpu_hours: float = 40) -> dict:
    return {"name": "arch", "kind": "training", "tasks": tasks,
            "per_task": {"gpu_hours": gpu_hours, "gpu_memory_gb": 20, "memory_gb": 16,
                         "checkpoint_gb": 1, "precision": "bf16"}}


@pytest.fixture(scope="module")
def plan() -> Plan:
    """40 h per task: candidates with and without checkpoints, on and off backfill."""
    return make_plan(workload_from_dict(_arch()), "chtc", replications=1, seed=3)


@pytest.fixture(scope="module")
def not_a_fit() -> Plan:
    return make_plan(load_workload_or_profile(WORKLOADS / "3_foundation_model.yaml"), "chtc",
                     replications=1)


def _outcome(mean: float, half_width: float = 0.0) -> Outcome:
    return Outcome(time_to_results_hours={"mean": mean, "p90": mean + half_width,
                                          "ci95_low": mean - half_width, "ci95_high": mean + half_width},
                   goodput_fraction=0.9, evictions_per_task=0.0, tasks_held=0.0, scale=1.0)


# --- plan -----------------------------------------------------------------------------------

def test_plan_lists_the_candidates_of_its_space(plan: Plan) -> None:
    assert plan.simulates and plan.space is not None and plan.sizing is not None
    assert list(plan.candidates) == enumerate_candidates(plan.space)
    assert any(c.checkpoint_interval_hours for c in plan.candidates)
    assert any(c.is_resumable for c in plan.candidates)
    assert plan.assumed and "other users keep 60% of the shared GPUs busy" in plan.assumed[0]


def test_progress_total_counts_the_first_round_and_every_possible_refinement(plan: Plan) -> None:
    assert plan.progress_total == len(plan.candidates) + MAX_REFINEMENTS
    assert plan.space is not None
    for c in plan.candidates:
        assert len(refinements(plan.space, c)) <= MAX_REFINEMENTS
    # Many short items per job, checkpointing: both the interval and the items per job, all four.
    short = make_plan(workload_from_dict(_arch(tasks=100, gpu_hours=0.5)), "chtc")
    assert short.space is not None
    batched = dataclasses.replace(short.candidates[0], items_per_job=4, checkpoint_interval_hours=1.0)
    refined = refinements(short.space, batched)
    assert len(refined) <= MAX_REFINEMENTS
    assert {c.items_per_job for c in refined} >= {2, 8} and {0.5, 2.0} <= {c.checkpoint_interval_hours for c in refined}


def test_a_plan_for_a_workload_that_does_not_fit_simulates_nothing(not_a_fit: Plan, plan: Plan) -> None:
    assert not not_a_fit.simulates
    assert not_a_fit.candidates == () and not_a_fit.assessment.verdict == "not-a-fit"
    with pytest.raises(ValueError, match="simulates nothing"):
        plan_scenario(not_a_fit, plan.candidates[0])


@pytest.mark.parametrize(("option", "value"), [("objective", "median"), ("replications", 0),
                                               ("background_load", 1.0)])
def test_plan_refuses_bad_options(option: str, value: object) -> None:
    with pytest.raises(InputError, match=option.replace("_", "-")):
        make_plan(workload_from_dict(_arch()), "chtc", **{option: value})  # type: ignore[arg-type]


def test_plan_scenario_is_a_function_of_the_plan_and_its_arguments(plan: Plan) -> None:
    c = plan.candidates[0]
    scn, scale = plan_scenario(plan, c)
    again, scale_again = plan_scenario(plan, c)
    assert scn == again and scale == scale_again == 1.0
    assert plan.sizing is not None
    assert scn.workload.request.request_cpus == plan.sizing.request_cpus
    assert scn.workload.request.is_resumable == c.is_resumable
    busier, _ = plan_scenario(plan, c, 0.8)
    # other users on the shared GPUs, and on the owned GPUs the owners leave idle (CHTC has both)
    assert [b.name for b in scn.background] == [b.name for b in busier.background] == [
        "other-users", "other-users-backfill"]
    assert scn.background[1].request.is_resumable
    # Other users' arrival rate grows with the load they keep busy: 0.8 / 0.6.
    for now, busy in zip(scn.background, busier.background, strict=True):
        assert now.arrival.mean / busy.arrival.mean == pytest.approx(0.8 / 0.6)


# --- evaluate -------------------------------------------------------------------------------

def test_evaluate_stage_simulates_the_plan_in_order_and_reports_progress(plan: Plan) -> None:
    calls: list[tuple[int, int, str]] = []
    evaluated = evaluate_plan(plan, lambda done, total, label: calls.append((done, total, label)))
    first = len(plan.candidates)
    assert [e.candidate for e in evaluated[:first]] == list(plan.candidates)
    # then the refinements around the first round's best (none when it is a plain request)
    best = choose(evaluated[:first], plan.objective)
    assert best is not None and plan.space is not None
    expected = [c for c in refinements(plan.space, best.candidate) if c not in plan.candidates]
    assert [e.candidate for e in evaluated[first:]] == expected
    assert len(evaluated) <= first + MAX_REFINEMENTS
    assert all(t == plan.progress_total for _, t, _ in calls)
    assert [label for _, _, label in calls[:first]] == [c.label for c in plan.candidates]
    assert calls[-1] == (plan.progress_total, plan.progress_total, "done")
    assert [d for d, _, _ in calls[:-1]] == list(range(len(evaluated)))
    assert all(e.outcome is not None for e in evaluated if e.candidate.why_not is None)
    assert not any(e.chosen for e in evaluated)                     # choosing is explain's
    # Common random numbers: a candidate evaluated again gets the same outcome.
    assert evaluate_candidate(plan, plan.candidates[0]).outcome == evaluated[0].outcome


def test_evaluate_stage_does_nothing_for_a_plan_that_simulates_nothing(not_a_fit: Plan) -> None:
    calls: list[tuple[int, int, str]] = []
    assert evaluate_plan(not_a_fit, lambda *a: calls.append(a)) == [] and calls == []


def test_a_candidate_that_cannot_work_is_not_simulated(plan: Plan) -> None:
    c = dataclasses.replace(plan.candidates[0], why_not="held at the tier limit")
    assert evaluate_candidate(plan, c).outcome is None


def test_choose_prefers_the_simpler_request_within_the_noise(plan: Plan) -> None:
    plain = next(c for c in plan.candidates if not c.is_resumable and not c.checkpoint_interval_hours)
    fancy = next(c for c in plan.candidates if c.is_resumable and c.checkpoint_interval_hours)
    # 2% faster, but the faster one's own 95% interval is ±5%: a tie, the simpler request wins.
    noisy = [Evaluated(plain, _outcome(10.0)), Evaluated(fancy, _outcome(9.8, half_width=0.5))]
    assert choose(noisy, "mean") is noisy[0]
    # Beyond the noise the faster one wins.
    clear = [Evaluated(plain, _outcome(10.0)), Evaluated(fancy, _outcome(8.0, half_width=0.1))]
    assert choose(clear, "mean") is clear[1]
    assert choose([Evaluated(plain, _outcome(math.inf)), Evaluated(fancy, None)], "mean") is None


# --- explain --------------------------------------------------------------------------------

def test_explain_needs_no_simulation(plan: Plan, monkeypatch: pytest.MonkeyPatch) -> None:
    """From made-up outcomes alone: the fastest candidate is chosen, and the request, the verdict
    and the expected time follow from it."""
    def no_simulation(*args: object, **kwargs: object) -> None:
        raise AssertionError("explain simulated")
    monkeypatch.setattr("advisor.recommend.evaluate.run_summary", no_simulation)
    monkeypatch.setattr("advisor.recommend.simulate.evaluate", no_simulation)
    ckpt = next(c for c in plan.candidates if c.is_resumable and c.checkpoint_interval_hours)
    evaluated = [Evaluated(c, _outcome(5.0 if c == ckpt else 50.0)) for c in plan.candidates]
    rec = explain(plan, evaluated)
    assert rec.chosen is not None and rec.chosen.candidate == ckpt
    assert sum(e.chosen for e in rec.candidates) == 1
    assert rec.request is not None and rec.request.is_resumable
    assert rec.request.checkpoint_interval_minutes == round((ckpt.checkpoint_interval_hours or 0) * 60)
    assert rec.expected["time_to_results_hours"]["mean"] == 5.0
    # 40 h fits the long tier unbroken: checkpointing was the simulation's choice, and it says so.
    assert plan.assessment.verdict == rec.verdict == "htc-able"
    assert rec.reasons[0].startswith("Checkpointing is optional here")
    assert plan.space is not None
    assert rec.checkpoint["daly"] == describe_daly(plan.space, ckpt.min_capability, True)
    assert rec.plan is plan


def test_explain_without_a_finished_candidate_recommends_nothing(plan: Plan) -> None:
    rec = explain(plan, [Evaluated(c, _outcome(math.inf)) for c in plan.candidates])
    assert rec.request is None and rec.chosen is None
    assert rec.reasons[-1] == "No candidate finished all its jobs in the simulation."


def test_explain_gives_dalys_numbers_with_backfill_for_a_request_that_does_not_checkpoint(plan: Plan) -> None:
    plain = next(c for c in plan.candidates if not c.is_resumable and not c.checkpoint_interval_hours)
    rec = explain(plan, [Evaluated(c, _outcome(5.0 if c == plain else 50.0)) for c in plan.candidates])
    assert rec.request is not None and rec.request.checkpoint_interval_minutes is None
    assert plan.space is not None
    assert "daly" not in rec.checkpoint                  # CHTC's shared GPUs do not evict
    assert rec.daly_with_backfill == describe_daly(plan.space, plain.min_capability, True)
    assert rec.daly_with_backfill is not None and rec.daly_with_backfill["daly_interval_hours"] > 0


def test_recommend_is_the_three_stages_composed() -> None:
    w = workload_from_dict(_arch(tasks=2, gpu_hours=6))
    staged = make_plan(w, "chtc", replications=1, seed=2)
    whole = recommend(w, "chtc", replications=1, seed=2)
    assert whole.to_dict() == explain(staged, evaluate_plan(staged)).to_dict()


# --- the report reads data ------------------------------------------------------------------

def test_the_recommendation_holds_no_callbacks() -> None:
    assert not hasattr(Recommendation, "scenario_for")
    names = {f.name for f in dataclasses.fields(Recommendation)}
    assert "simulate" not in names and "space" not in names
    assert not any("Callable" in str(f.type) for f in dataclasses.fields(Recommendation))


def _report_sources() -> list[tuple[str, ast.Module]]:
    return [(p.name, ast.parse(p.read_text())) for p in sorted(REPORT_DIR.glob("*.py"))]


def test_the_report_calls_no_method_of_the_recommendation() -> None:
    """No `rec.x(...)` / `recommendation.x(...)` / `report.recommendation.x(...)` in the report."""
    names = {"rec", "recommendation"}
    calls = []
    for name, tree in _report_sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                if (isinstance(owner, ast.Name) and owner.id in names) or (
                        isinstance(owner, ast.Attribute) and owner.attr in names):
                    calls.append(f"{name}:{node.lineno}: {ast.unparse(node.func)}")
    assert calls == []


def test_the_report_does_not_recompute_dalys_interval() -> None:
    """Daly's optimum and the mean time to eviction come from the recommendation's explanation."""
    used = set()
    for _, tree in _report_sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                used.add(node.id)
            elif isinstance(node, ast.Attribute):
                used.add(node.attr)
            elif isinstance(node, ast.alias):
                used.add(node.name)
    assert not used & {"describe_daly", "daly_interval", "young_interval", "mean_time_to_eviction"}
