"""Replay a trace's derived load on a pool made from its node list, and compare utilizations.

The replay scenario: the trace pool (shared slots, no tiers, no eviction, first come first
served), every GPU at speed 1 (trace durations are wall-clock times on whatever GPU the job
had) and the derived background classes. The workload is a single placeholder task submitted
after the horizon, so only the background runs. Two modes:

* `steady` (the default): a warm-up as long as the longest derived job, then a measured stretch
  as long as the trace's window. With no queueing its utilization is the derived process's
  offered load Σ λ·E[D]·g / GPUs (`offered_utilization`), which equals the trace's in-window
  busy GPU-time / (GPUs × window) up to the arrival-rate estimate. A higher simulated figure
  means the simulator inflated the load (queueing on a full pool); that is what this checks.
* `window`: the window alone, from an empty pool, jobs cut off at its end. The derived durations
  were already cut off at the trace's end, so they are cut twice; the expected figure is
  `DerivedBackground.expected_window_gpus` (`expected_replay_utilization`), below the trace's.

Either way the simulated figure is compared with the trace's *in-window* utilization (jobs
submitted in the window); the survivors' share (jobs submitted before the window, left out of
the derived process because their lengths are unknown) is reported beside it.

**Tolerance.** The trace is one sample path; the replay draws R others from the derived
process. If the derived process is right, the trace's value lies in the replay's 95%
*prediction* interval for one new path: mean ± t(0.975, R−1)·s·√(1 + 1/R) (`tolerance`,
`within_tolerance`). A few long jobs carry most of the GPU time in real traces, so s is large;
the tighter check of the machinery is that the simulated mean's own 95% CI holds the expected
figure (`expected_in_ci`). The queue has a fixed pool: if the derived load exceeds the pool's
GPUs the replay saturates and cannot match (`over_capacity`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.table import Table

from advisor.errors import InputError
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
from simulator.replicate import aggregate, run_replications, t975
from simulator.scenario import Scenario

MODES = ("steady", "window")


def _warmup_hours(derived: DerivedBackground, mode: str) -> float:
    if mode not in MODES:
        raise InputError("mode", mode, f"must be one of {', '.join(MODES)}.",
                         "use steady (warm-up, then the window's length) or window.")
    return max(c["max_hours"] for c in derived.classes) if mode == "steady" else 0.0


def replay_scenario(trace: Trace, derived: DerivedBackground | None = None, *,
                    fractional: str = "weight", seed: int = 1, replications: int = 5,
                    mode: str = "steady",
                    undisclosed_gpu: str = DEFAULT_UNDISCLOSED_GPU) -> Scenario:
    derived = derived or derive_background(trace, fractional=fractional)
    pool = trace_pool(trace, undisclosed_gpu=undisclosed_gpu)
    gpus = list(dict.fromkeys(s["gpu"] for s in pool["slots"]))
    warmup = _warmup_hours(derived, mode)
    horizon = warmup + derived.window_hours
    return Scenario.from_dict({
        "name": f"trace-replay-{mode}", "seed": seed, "replications": replications,
        "warmup_hours": warmup, "horizon_hours": horizon, "pool": pool, "eviction": "none", "fair_share": "none",
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
    offered_utilization: float         # derived load / GPUs (steady state, no queueing)
    expected_replay_utilization: float  # what this replay should give without queueing
    expected_in_ci: bool               # the simulated mean's 95% CI holds the expected figure
    mode: str
    over_capacity: bool
    replications: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {"trace_utilization": self.trace.to_dict(), "background": self.derived.to_dict(),
                "simulated_utilization": self.simulated, "difference": self.difference,
                "tolerance": self.tolerance, "within_tolerance": self.within_tolerance,
                "offered_utilization": self.offered_utilization,
                "expected_replay_utilization": self.expected_replay_utilization,
                "expected_in_ci": self.expected_in_ci, "mode": self.mode,
                "over_capacity": self.over_capacity, "replications": self.replications,
                "seed": self.seed}

    def lines(self) -> list[str]:
        t, s = self.trace, self.simulated
        out = [f"trace utilization ({t.gpus} GPUs, {t.window_hours:.0f} h, fractional GPUs: "
               f"{t.fractional}): {t.utilization:.4%} in all; {t.utilization_in_window:.4%} from "
               f"jobs submitted in the window, {t.utilization_survivors:.4%} from earlier survivors",
               f"derived load: {self.offered_utilization:.4%} of the GPUs offered in steady state",
               f"simulated ({self.mode} replay, {self.replications} replications): "
               f"{s['mean']:.4%} [{s['ci95_low']:.4%}, {s['ci95_high']:.4%}]; expected without "
               f"queueing {self.expected_replay_utilization:.4%} "
               f"({'inside' if self.expected_in_ci else 'OUTSIDE'} the CI)",
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
        t.add_row("derived load offered (steady state)", f"{self.offered_utilization:.4%}")
        t.add_row(f"expected {self.mode} replay (no queueing)",
                  f"{self.expected_replay_utilization:.4%}")
        t.add_row(f"simulated {self.mode} replay ({self.replications} reps)",
                  f"{s['mean']:.4%} [{s['ci95_low']:.4%}, {s['ci95_high']:.4%}]")
        t.add_row("difference (simulated − trace in-window)",
                  f"{self.difference:+.4%} ± {self.tolerance:.4%} "
                  f"{'ok' if self.within_tolerance else 'OUTSIDE'}")
        return t


def replay_comparison(trace: Trace, *, fractional: str = "weight", replications: int = 5,
                      seed: int = 1, mode: str = "steady", workers: int = 0, scheduler: str | None = None,
                      users: int = DEFAULT_USERS,
                      undisclosed_gpu: str = DEFAULT_UNDISCLOSED_GPU,
                      progress: Callable[[int, int], None] | None = None) -> ReplayComparison:
    """The trace's utilization vs the simulated utilization of its replay."""
    util = trace_utilization(trace, fractional)
    derived = derive_background(trace, fractional=fractional, users=users)
    scenario = replay_scenario(trace, derived, seed=seed, replications=replications, mode=mode,
                               undisclosed_gpu=undisclosed_gpu)
    runs = run_replications([scenario], replications, seed, workers=workers, scheduler=scheduler,
                            progress=progress)[0]
    sim = aggregate([{"u": r["pool_utilization"]} for r in runs])["u"]
    values = np.array([r["pool_utilization"] for r in runs], dtype=float)
    n = len(values)
    sd = float(np.std(values, ddof=1)) if n > 1 else math.nan
    tol = t975(n - 1) * sd * math.sqrt(1 + 1 / n) if n > 1 else math.nan
    diff = float(sim["mean"]) - util.utilization_in_window
    offered = derived.offered_gpus / util.gpus
    expected = offered if mode == "steady" else derived.expected_window_gpus() / util.gpus
    lo, hi = float(sim["ci95_low"]), float(sim["ci95_high"])
    return ReplayComparison(trace=util, derived=derived, simulated=sim, difference=diff,
                            tolerance=tol, within_tolerance=bool(abs(diff) <= tol),
                            offered_utilization=offered,
                            expected_replay_utilization=expected,
                            expected_in_ci=bool(lo <= expected <= hi), mode=mode,
                            over_capacity=offered > 1.0,
                            replications=replications, seed=seed)


__all__ = ["ReplayComparison", "replay_comparison", "replay_scenario"]
