"""Replay a trace's derived load on a pool made from its node list, and compare utilizations.

The replay scenario: the trace pool (shared slots, no tiers, no eviction, first come first
served), every GPU at speed 1 (trace durations are wall-clock times on whatever GPU the job
had), the derived background classes, and a horizon equal to the trace's window. The workload
is a single placeholder task submitted after the horizon, so only the background runs. Like the
trace's jobs submitted in its window, the replay starts from an empty pool and clips jobs at the
window's end; so its utilization is compared with the trace's *in-window* utilization. The
survivors' share (jobs submitted before the window) is reported beside it.

**Tolerance.** The trace is one sample path; the replay draws R others from the derived
process. If the derived process is right, the trace's value lies in the replay's 95%
*prediction* interval for one new path: mean ± t(0.975, R−1)·s·√(1 + 1/R). The difference is
reported with that half-width (`tolerance`) and `within_tolerance`. The queue has a fixed pool:
if the derived load exceeds the pool's GPUs the replay saturates and cannot match (reported as
`over_capacity`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.table import Table

from advisor.traces.derive import (
    DEFAULT_UNDISCLOSED_GPU,
    DEFAULT_USERS,
    DerivedBackground,
    TraceUtilization,
    derive_background,
    trace_pool,
    trace_utilization,
)
from advisor.traces.read import Trace
from simulator.replicate import aggregate, t975
from simulator.scenario import Scenario


def replay_scenario(trace: Trace, derived: DerivedBackground | None = None, *,
                    fractional: str = "weight", seed: int = 1, replications: int = 5,
                    undisclosed_gpu: str = DEFAULT_UNDISCLOSED_GPU) -> Scenario:
    derived = derived or derive_background(trace, fractional=fractional)
    pool = trace_pool(trace, undisclosed_gpu=undisclosed_gpu)
    gpus = list(dict.fromkeys(s["gpu"] for s in pool["slots"]))
    horizon = derived.window_hours
    return Scenario.from_dict({
        "name": "trace-replay", "seed": seed, "replications": replications,
        "horizon_hours": horizon, "pool": pool, "eviction": "none", "fair_share": "none",
        "workload": {"name": "placeholder", "tasks": 1, "start_hours": horizon + 1.0,
                     "work_hours": {"dist": "fixed", "value": 0.0}, "reference_gpu": gpus[0],
                     "speed": {g: 1.0 for g in gpus}, "request": {"gpus": 1}},
        "background": derived.entries,
    }, source=f"replay of {trace.source}")


@dataclass
class ReplayComparison:
    trace: TraceUtilization
    derived: DerivedBackground
    simulated: dict[str, Any]          # {mean, ci95_low, ci95_high, std, n}
    difference: float                  # simulated mean − trace in-window utilization
    tolerance: float                   # 95% prediction half-width
    within_tolerance: bool
    offered_utilization: float         # derived load / GPUs
    over_capacity: bool
    replications: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {"trace_utilization": self.trace.to_dict(), "background": self.derived.to_dict(),
                "simulated_utilization": self.simulated, "difference": self.difference,
                "tolerance": self.tolerance, "within_tolerance": self.within_tolerance,
                "offered_utilization": self.offered_utilization,
                "over_capacity": self.over_capacity, "replications": self.replications,
                "seed": self.seed}

    def lines(self) -> list[str]:
        t, s = self.trace, self.simulated
        out = [f"trace utilization ({t.gpus} GPUs, {t.window_hours:.0f} h, fractional GPUs: "
               f"{t.fractional}): {t.utilization:.4%} in all; {t.utilization_in_window:.4%} from "
               f"jobs submitted in the window, {t.utilization_survivors:.4%} from earlier survivors",
               f"derived load: {self.offered_utilization:.4%} of the GPUs offered",
               f"simulated (replay, {self.replications} replications): {s['mean']:.4%} "
               f"[{s['ci95_low']:.4%}, {s['ci95_high']:.4%}]",
               f"difference simulated − trace (in-window): {self.difference:+.4%} "
               f"(tolerance ±{self.tolerance:.4%}, 95% prediction interval): "
               f"{'within' if self.within_tolerance else 'OUTSIDE'}"]
        if self.over_capacity:
            out.append("the trace's load exceeds the pool's GPUs: the replay saturates and "
                       "queues; utilizations cannot agree")
        return out

    def table(self) -> Table:
        t = Table(title="trace vs simulated utilization")
        t.add_column("what")
        t.add_column("utilization", justify="right")
        tr, s = self.trace, self.simulated
        t.add_row("trace, all jobs", f"{tr.utilization:.4%}")
        t.add_row("trace, jobs submitted in the window", f"{tr.utilization_in_window:.4%}")
        t.add_row("trace, survivors from before the window", f"{tr.utilization_survivors:.4%}")
        t.add_row("derived load offered", f"{self.offered_utilization:.4%}")
        t.add_row(f"simulated replay ({self.replications} reps)",
                  f"{s['mean']:.4%} [{s['ci95_low']:.4%}, {s['ci95_high']:.4%}]")
        t.add_row("difference (simulated − trace in-window)",
                  f"{self.difference:+.4%} ± {self.tolerance:.4%} "
                  f"{'ok' if self.within_tolerance else 'OUTSIDE'}")
        return t


def replay_comparison(trace: Trace, *, fractional: str = "weight", replications: int = 5,
                      seed: int = 1, workers: int = 0, scheduler: str | None = None,
                      users: int = DEFAULT_USERS,
                      undisclosed_gpu: str = DEFAULT_UNDISCLOSED_GPU,
                      progress: Callable[[int, int], None] | None = None) -> ReplayComparison:
    """The trace's utilization vs the simulated utilization of its replay."""
    from advisor.whatif import run_all

    util = trace_utilization(trace, fractional)
    derived = derive_background(trace, fractional=fractional, users=users)
    scenario = replay_scenario(trace, derived, seed=seed, replications=replications,
                               undisclosed_gpu=undisclosed_gpu)
    runs = run_all([scenario], replications, seed, workers=workers, scheduler=scheduler,
                   progress=progress)[0]
    sim = aggregate([{"u": r["pool_utilization"]} for r in runs])["u"]
    values = np.array([r["pool_utilization"] for r in runs], dtype=float)
    n = len(values)
    sd = float(np.std(values, ddof=1)) if n > 1 else math.nan
    tol = t975(n - 1) * sd * math.sqrt(1 + 1 / n) if n > 1 else math.nan
    diff = float(sim["mean"]) - util.utilization_in_window
    offered = derived.offered_gpus / util.gpus
    return ReplayComparison(trace=util, derived=derived, simulated=sim, difference=diff,
                            tolerance=tol, within_tolerance=bool(abs(diff) <= tol),
                            offered_utilization=offered, over_capacity=offered > 1.0,
                            replications=replications, seed=seed)


__all__ = ["ReplayComparison", "replay_comparison", "replay_scenario"]
