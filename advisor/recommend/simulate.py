"""The evaluate stage of `recommend`: simulate the plan's candidates with common random numbers.

`evaluate_plan` simulates the first round of candidates (`Plan.candidates`), then the refinements
around the best of them (`candidates.refinements`), each with the same seeds
(`advisor.recommend.evaluate.evaluate`): only the policy differs between two candidates. `choose`
is the ranking both this stage (what to refine around) and the explain stage (what to recommend)
use.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from advisor.errors import ConfigError
from advisor.recommend.candidates import Candidate, refinements
from advisor.recommend.evaluate import Outcome, evaluate
from advisor.recommend.plan import Plan, plan_scenario

Progress = Callable[[int, int, str], None]


@dataclass
class Evaluated:
    candidate: Candidate
    outcome: Outcome | None
    chosen: bool = False

    def to_dict(self) -> dict[str, Any]:
        c = self.candidate
        d: dict[str, Any] = {
            "label": c.label, "gpus_minimum_capability": c.min_capability or None,
            "job_length": c.job_length, "is_resumable": c.is_resumable,
            "checkpoint_interval_minutes": None if c.checkpoint_interval_hours is None
            else round(c.checkpoint_interval_hours * 60, 1),
            "items_per_job": c.items_per_job, "cpu_ok": c.cpu_ok,
            "feasible": c.why_not is None and self.outcome is not None
            and math.isfinite(self.outcome.time_to_results_hours["mean"]),
            "why_not": c.why_not, "chosen": self.chosen,
        }
        if self.outcome is not None:
            d.update(self.outcome.to_dict())
            if not math.isfinite(self.outcome.time_to_results_hours["mean"]):
                d["why_not"] = d["why_not"] or "jobs were held at the tier limit in the simulation"
        return d


def _simplicity(c: Candidate) -> int:
    """How much a candidate asks beyond the plainest request: checkpointing, backfill, a
    capability floor, CPU slots (fewer is simpler)."""
    return (c.checkpoint_interval_hours is not None) + c.is_resumable + (c.min_capability > 0) + c.cpu_ok


def choose(evaluated: list[Evaluated], objective: str) -> Evaluated | None:
    """The best candidate by `objective` ("mean" or "p90" time to results), or None when no
    candidate finished all its jobs."""
    ok = [e for e in evaluated if e.outcome is not None
          and math.isfinite(e.outcome.time_to_results_hours[objective])]
    if not ok:
        return None

    # Ties (within 1%) go to the simpler request: fewer restrictions, no checkpointing, no backfill.
    def key(e: Evaluated) -> tuple[float, int]:
        assert e.outcome is not None
        return (round(e.outcome.time_to_results_hours[objective], 2), _simplicity(e.candidate))
    best = min(ok, key=key)
    assert best.outcome is not None
    ttr = best.outcome.time_to_results_hours
    # Differences inside the best candidate's own noise (half its 95% interval, at least 1%)
    # are ties: a simpler request is worth more than a gain the simulation cannot resolve.
    half = (ttr["ci95_high"] - ttr["ci95_low"]) / 2 if math.isfinite(ttr["ci95_high"]) else 0.0
    target = ttr[objective] + max(0.01 * ttr[objective], half)
    near = [e for e in ok if e.outcome is not None
            and e.outcome.time_to_results_hours[objective] <= target]
    return min(near, key=lambda e: (key(e)[1], key(e)[0]))


def evaluate_candidate(plan: Plan, c: Candidate, scheduler: str | None = None) -> Evaluated:
    """One candidate simulated under the plan (not simulated when it cannot work), in this
    process or on the Dask scheduler at `scheduler`."""
    if c.why_not is not None:
        return Evaluated(c, None)
    try:
        scenario, scale = plan_scenario(plan, c)
    except ConfigError as exc:  # the candidate's request matches no slot of the pool
        return Evaluated(replace(c, why_not=f"matches no slot: {exc.problem}"), None)
    return Evaluated(c, evaluate(scenario, scale, plan.replications, plan.seed, scheduler=scheduler))


def evaluate_plan(plan: Plan, progress: Progress | None = None,
                  scheduler: str | None = None) -> list[Evaluated]:
    """Every candidate simulated, in order: the first round, then the refinements around the best
    (on the Dask scheduler at `scheduler` when given). Reports `progress(done, plan.progress_total,
    label)` before each, and the total at the end."""
    if not plan.simulates:
        return []
    assert plan.space is not None
    total = plan.progress_total
    evaluated: list[Evaluated] = []
    for i, c in enumerate(plan.candidates):
        if progress:
            progress(i, total, c.label)
        evaluated.append(evaluate_candidate(plan, c, scheduler))
    best = choose(evaluated, plan.objective)
    if best is not None:
        seen = {e.candidate for e in evaluated}
        for c in refinements(plan.space, best.candidate):
            if c not in seen:
                if progress:
                    progress(len(evaluated), total, c.label)
                evaluated.append(evaluate_candidate(plan, c, scheduler))
    if progress:
        progress(total, total, "done")
    return evaluated
