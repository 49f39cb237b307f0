"""The checkpoint interval is chosen over the whole range that matters (Daly, the pool's 1-5 h
guidance, the tier bound), and one outside the guidance only with the figure that justifies it."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from advisor.recommend import recommend
from advisor.recommend.candidates import Candidate, guidance_intervals, in_guidance, interval_sweep
from advisor.recommend.evaluate import Outcome
from advisor.recommend.explain import interval_curve, within_guidance
from advisor.recommend.plan import make_plan
from advisor.recommend.simulate import Evaluated
from advisor.workload import load_workload
from simulator.pool import load_pool

REPO = Path(__file__).resolve().parents[1]
MANY = REPO / "examples" / "workloads" / "2_many_architectures.yaml"


def test_guidance_intervals_stand_for_chtcs_range() -> None:
    g = load_pool("chtc").checkpoint_guidance
    assert guidance_intervals(g) == [1.0, 2.0, 3.0, 5.0]
    assert guidance_intervals(load_pool("ospool").checkpoint_guidance) == []
    assert in_guidance(None, g) and in_guidance(3.0, g) and not in_guidance(50 / 60, g)
    assert in_guidance(50 / 60, None)


def _outcome(mean: float, half: float, lost: float = 0.01) -> Outcome:
    return Outcome({"mean": mean, "p90": mean + half, "ci95_low": mean - half, "ci95_high": mean + half},
                   0.95, 0.5, 0.0, 1.0, lost_fraction=lost)


@pytest.fixture(scope="module")
def plan():
    w = dataclasses.replace(load_workload(MANY), tasks=20)
    return make_plan(w, "chtc", replications=2)


def test_the_sweep_covers_daly_the_guidance_and_the_tier_bound(plan) -> None:
    best = Candidate(9.0, "short", True, 25 / 60)
    taus = [c.checkpoint_interval_hours for c in interval_sweep(plan.space, best)]
    for hours in (1.0, 2.0, 3.0, 5.0):
        assert hours in taus
    assert min(taus) < 1.0          # Daly's optimum for 8 h between evictions and a 40 s write
    assert max(taus) > 5.0          # the longest run the 12 h tier allows
    assert all(c.job_length == "short" for c in interval_sweep(plan.space, best))


def test_outside_the_guidance_only_beyond_the_noise(plan) -> None:
    out = Evaluated(Candidate(9.0, "short", True, 50 / 60), _outcome(38.0, 1.0))
    inside = Evaluated(Candidate(9.0, "short", True, 1.0), _outcome(38.5, 1.0))
    chosen, figure = within_guidance(out, [out, inside], plan)
    assert chosen is inside                         # 38.0 ± 1 overlaps 38.5 ± 1: a tie
    assert figure and figure["recommended_inside"] and not figure["beats_beyond_noise"]
    clear = Evaluated(Candidate(9.0, "short", True, 50 / 60), _outcome(30.0, 1.0))
    chosen, figure = within_guidance(clear, [clear, inside], plan)
    assert chosen is clear and figure and figure["beats_beyond_noise"]
    assert figure["time_to_results_hours"]["ci95_high"] < figure["best_inside_time_to_results_hours"]["ci95_low"]
    chosen, figure = within_guidance(inside, [out, inside], plan)
    assert chosen is inside and figure is None


def test_interval_curve_keeps_the_chosen_policy_only() -> None:
    a = Evaluated(Candidate(9.0, "short", True, 1.0), _outcome(40.0, 1.0, 0.02), chosen=True)
    b = Evaluated(Candidate(9.0, "short", True, 5.0), _outcome(45.0, 3.0, 0.09))
    other = Evaluated(Candidate(8.0, "short", True, 2.0), _outcome(41.0, 1.0))
    curve = interval_curve([b, other, a], a.candidate)
    assert [r["interval_minutes"] for r in curve] == [60.0, 300.0]
    assert curve[0]["chosen"] and curve[1]["lost_fraction"] == 0.09


def test_many_architectures_interval_is_inside_the_guidance_or_justified() -> None:
    w = dataclasses.replace(load_workload(MANY), tasks=20)
    rec = recommend(w, "chtc", replications=4, seed=1)
    story = rec.checkpoint
    minutes = story["interval_minutes"]
    assert minutes is not None
    figure = story.get("guidance_figure") or {}
    assert 60 <= minutes <= 300 or figure.get("beats_beyond_noise") is True
    curve = story["interval_curve"]
    simulated = {r["interval_minutes"] for r in curve}
    assert {60.0, 120.0, 180.0, 300.0} <= simulated
    assert all(math.isfinite(r["ci95_low_hours"]) and r["ci95_low_hours"] <= r["mean_hours"]
               <= r["ci95_high_hours"] for r in curve if r["interval_minutes"] is not None)
    assert "lost" in story["explanation"] and "to results" in story["explanation"]


def test_a_60_hour_single_training_is_inside_the_guidance_or_says_where_it_differs() -> None:
    # one 60 h (reference GPU) training on CHTC: the model may drop checkpoints when nothing
    # evicts the slots, but then it must say that the pool's guidance differs, with the figure
    from advisor.workload import workload_from_dict

    w = workload_from_dict({"name": "single-60h", "kind": "training", "tasks": 1, "resumable": True,
                            "per_task": {"gpu_hours": 60, "gpu_memory_gb": 20, "memory_gb": 16,
                                         "checkpoint_gb": 1.0}})
    rec = recommend(w, "chtc", replications=4, seed=1)
    story = rec.checkpoint
    minutes = story["interval_minutes"]
    if minutes is not None:
        assert 60 <= minutes <= 300 or (story.get("guidance_figure") or {}).get("beats_beyond_noise")
        return
    differs = story["guidance_disagrees"]
    assert differs["longest_run_hours"] > 5 and differs["guidance_hours"] == [1, 5]
    assert 60 <= differs["best_inside_interval_minutes"] <= 300
    assert math.isfinite(differs["cost_hours"])
    assert "guidance differ" in story["explanation"] and "insurance" in story["explanation"]
    assert {60.0, 300.0} <= {r["interval_minutes"] for r in story["interval_curve"]}
