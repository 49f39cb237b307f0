"""Measured eviction behaviour and run times → a scenario fragment the simulator reads.

Eviction rate: evictions by the pool (an eviction right before a removal or hold is not one)
per running hour, over all runs of all jobs; runs still open at the end of a log count up to
its last event (right-censored). For exponential times to eviction this is also the maximum
likelihood estimate of the rate, and its exact confidence interval is the Poisson (Garwood)
chi-square interval. The mean time to eviction is the reciprocal, interval reversed.

Run time: for completed jobs (those with exit code 0 when there are any), the good time of each
job (the terminating run plus checkpointed runs), in hours, on whichever GPUs they ran.

The fragment uses the scenario keys of docs/DESIGN.md §4.3:
`eviction: {time_to_eviction: {dist: exponential, mean: H}}` and
`workload: {work_hours: {dist: empirical, values: [...]}}`, with `# source:` comments naming the
logs and the interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from advisor.logs.records import JobRecord
from advisor.logs.stats import poisson_rate_interval
from advisor.output import atomic_write

MAX_EMPIRICAL_VALUES = 1000  # beyond this many jobs, the fragment keeps evenly spaced quantiles


def _sig(x: float, digits: int = 4) -> float:
    if x == 0 or not math.isfinite(x):
        return float(x)
    return float(f"{x:.{digits}g}")


@dataclass
class Calibration:
    sources: list[str]
    confidence: float
    exposure_hours: float
    evictions: int  # by the pool
    rate_per_hour: float | None
    rate_ci: tuple[float, float] | None
    mean_time_to_eviction_hours: float | None
    mean_time_to_eviction_ci: tuple[float, float | None] | None
    work_basis: str
    work_hours: dict[str, Any]
    work_values: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": self.sources,
            "confidence": self.confidence,
            "exposure_hours": self.exposure_hours,
            "evictions": self.evictions,
            "rate_per_hour": self.rate_per_hour,
            "rate_ci": list(self.rate_ci) if self.rate_ci else None,
            "mean_time_to_eviction_hours": self.mean_time_to_eviction_hours,
            "mean_time_to_eviction_ci": (list(self.mean_time_to_eviction_ci)
                                         if self.mean_time_to_eviction_ci else None),
            "method": "evictions per running hour; exact Poisson (chi-square) interval",
            "work_basis": self.work_basis,
            "work_hours": self.work_hours,
            "fragment": self.fragment(),
        }

    def fragment(self) -> dict[str, Any]:
        """The scenario keys: eviction and workload.work_hours (what is known of them)."""
        frag: dict[str, Any] = {}
        logs = ", ".join(self.sources)
        if self.exposure_hours > 0:
            if self.mean_time_to_eviction_hours is None:
                frag["eviction"] = {"time_to_eviction": "none"}
            else:
                frag["eviction"] = {"time_to_eviction": {
                    "dist": "exponential", "mean": _sig(self.mean_time_to_eviction_hours),
                    "source": f"advisor logs {logs}: {self._interval_text()}"}}
        if self.work_values:
            frag["workload"] = {"work_hours": {
                "dist": "empirical", "values": self.work_values,
                "source": f"advisor logs {logs}: {self.work_basis}, n = {self.work_hours['n']}"}}
        return frag

    def _interval_text(self) -> str:
        if self.rate_ci is None or self.mean_time_to_eviction_ci is None:
            return "no running time"
        lo, hi = self.mean_time_to_eviction_ci
        upper = "inf" if hi is None else f"{hi:.4g}"
        return (f"{self.evictions} evictions in {self.exposure_hours:.4g} running hours; mean "
                f"time to eviction {self.confidence:.0%} CI [{lo:.4g}, {upper}] h (exact "
                f"Poisson, chi-square)")

    def comments(self) -> list[str]:
        pct = f"{self.confidence:.0%}"
        lines = ["Calibration fragment written by `advisor logs --emit-calibration` "
                 "(scenario keys: docs/DESIGN.md §4.3).",
                 "source: HTCondor job event logs " + ", ".join(self.sources)]
        if self.exposure_hours > 0 and self.rate_ci is not None:
            lo, hi = self.rate_ci
            lines.append(f"eviction: {self.evictions} evictions by the pool in "
                         f"{self.exposure_hours:.4g} running hours")
            lines.append(f"eviction rate: {self.rate_per_hour:.4g} per running hour, {pct} CI "
                         f"[{lo:.4g}, {hi:.4g}] (exact Poisson interval, chi-square quantiles)")
            if self.mean_time_to_eviction_ci is not None:
                mlo, mhi = self.mean_time_to_eviction_ci
                upper = "inf" if mhi is None else f"{mhi:.4g}"
                mean = ("none observed" if self.mean_time_to_eviction_hours is None
                        else f"{self.mean_time_to_eviction_hours:.4g} h")
                lines.append(f"mean time to eviction: {mean}, {pct} CI [{mlo:.4g}, {upper}] h")
        else:
            lines.append("eviction: no running time in the logs, so no eviction estimate")
        if self.work_values:
            w = self.work_hours
            lines.append(f"work_hours: {self.work_basis}; n = {w['n']}, mean {w['mean']:.4g} h, "
                         f"cv {w['cv']:.3g}, p50 {w['p50']:.4g} h, p90 {w['p90']:.4g} h")
            if w["n"] > len(self.work_values):
                lines.append(f"work_hours values: {len(self.work_values)} evenly spaced "
                             f"quantiles of the {w['n']} measured values")
            lines.append("work_hours were measured on the GPUs the jobs ran on, not rescaled "
                         "to the scenario's reference_gpu")
        else:
            lines.append("work_hours: no completed job, so no run-time distribution")
        return lines

    def to_yaml(self) -> str:
        head = "".join(f"# {line}\n" for line in self.comments())
        body = yaml.safe_dump(self.fragment(), default_flow_style=None, sort_keys=False,
                              width=100)
        return head + (body if self.fragment() else "{}\n")


def calibrate(jobs: list[JobRecord], log_end_s: dict[str, float | None],
              sources: list[str], confidence: float = 0.95) -> Calibration:
    """Eviction rate with its exact interval, and the run-time distribution."""
    exposure_s = 0.0
    evictions = 0
    for j in jobs:
        evictions += j.preemptions
        for r in j.runs:
            if r.end_s is not None:
                exposure_s += r.seconds
            else:
                end = log_end_s.get(j.log)
                if end is not None:
                    exposure_s += max(0.0, end - r.start_s)
    exposure_h = exposure_s / 3600.0
    rate = rate_ci = mtte = mtte_ci = None
    if exposure_h > 0:
        lo, hi = poisson_rate_interval(evictions, exposure_h, confidence)
        rate = evictions / exposure_h
        rate_ci = (lo, hi)
        mtte = 1.0 / rate if evictions else None
        mtte_ci = (1.0 / hi, (1.0 / lo) if lo > 0 else None)
    completed = [j for j in jobs if j.terminated and j.good_seconds > 0]
    ok = [j for j in completed if j.exit_code == 0]
    if ok:
        basis = "good time of completed jobs with exit code 0"
        chosen = ok
    else:
        basis = "good time of completed jobs (none exited with code 0)"
        chosen = completed
    hours = np.asarray([j.good_seconds / 3600.0 for j in chosen], dtype=float)
    work: dict[str, Any] = {"n": int(hours.size)}
    values: list[float] = []
    if hours.size:
        mean = float(hours.mean())
        work.update({
            "mean": mean,
            "cv": float(hours.std(ddof=1) / mean) if hours.size > 1 and mean > 0 else 0.0,
            "p50": float(np.percentile(hours, 50)),
            "p90": float(np.percentile(hours, 90)),
            "max": float(hours.max()),
        })
        if hours.size > MAX_EMPIRICAL_VALUES:
            qs = (np.arange(MAX_EMPIRICAL_VALUES) + 0.5) / MAX_EMPIRICAL_VALUES
            picked = np.quantile(hours, qs)
        else:
            picked = np.sort(hours)
        values = [_sig(float(v)) for v in picked]
    return Calibration(
        sources=sources, confidence=confidence, exposure_hours=exposure_h, evictions=evictions,
        rate_per_hour=rate, rate_ci=rate_ci, mean_time_to_eviction_hours=mtte,
        mean_time_to_eviction_ci=mtte_ci, work_basis=basis, work_hours=work,
        work_values=values)


def write_fragment(cal: Calibration, path: str | Path) -> Path:
    """Write the fragment atomically; returns the path written."""
    return atomic_write(path, cal.to_yaml())
