"""What a consultation report holds: the simulated time-to-results, the what-ifs, the page."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from advisor.recommend import Evaluated, Recommendation
from advisor.recommend.evaluate import Outcome

CHECKPOINT_REPLICATIONS = 12          # per simulated interval
CHECKPOINT_SEGMENTS = 40              # simulate at most this many intervals of work, then scale


def outcome_mean(o: Outcome | None) -> float:
    return math.inf if o is None else o.time_to_results_hours["mean"]


@dataclass
class TimeToResults:
    """The simulated time-to-results of the chosen request, one value per replication (hours;
    replications with jobs held at the tier limit are counted in `held_runs`, not listed): a
    sample and its summary, not a probability distribution (that is
    `simulator.distributions.Distribution`, the type scenario files name)."""

    values_hours: list[float]
    held_runs: int
    replications: int
    scale: float

    def to_dict(self) -> dict[str, Any]:
        x = self.values_hours
        return {"replications": self.replications, "held_runs": self.held_runs,
                "values": x, "mean": statistics.fmean(x) if x else None,
                "median": statistics.median(x) if x else None,
                "p90": float(np.percentile(x, 90)) if x else None,
                "jobs_per_simulated_job": self.scale}


@dataclass
class WhatIf:
    """The chosen request against one variant: `backfill` (+is_resumable flipped) or `busier`
    (the same request while other users keep more of the shared GPUs busy)."""

    kind: str              # "backfill" | "busier"
    name: str              # short label for the figure and the table
    question: str
    chosen: Evaluated
    variant: Evaluated | None
    source: str            # "recommend" (among its candidates), "simulated here" or "none"
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "question": self.question,
                "chosen": self.chosen.to_dict(),
                "variant": None if self.variant is None else self.variant.to_dict(),
                "source": self.source, "note": self.note}


@dataclass
class Report:
    html: str
    workload: str
    pool: str
    verdict: str
    sections: list[str]
    recommendation: Recommendation
    time_to_results: TimeToResults | None = None
    whatifs: list[WhatIf] = field(default_factory=list)
    checkpoint: dict[str, Any] = field(default_factory=dict)

    def whatif(self, kind: str) -> WhatIf | None:
        return next((w for w in self.whatifs if w.kind == kind), None)

    @property
    def exit_code(self) -> int:
        return 0 if self.recommendation.request is not None else 1

    def to_dict(self) -> dict[str, Any]:
        rec = self.recommendation
        return {"workload": self.workload, "pool": self.pool, "verdict": self.verdict,
                "reasons": rec.reasons, "advice": rec.assessment.advice, "sections": self.sections,
                "request": None if rec.request is None else rec.request.to_dict(),
                "expected": rec.expected,
                "time_to_results": None if self.time_to_results is None
                else self.time_to_results.to_dict(),
                "checkpoint": self.checkpoint,
                "whatif": [w.to_dict() for w in self.whatifs]}
