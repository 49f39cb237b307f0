"""Paired comparison of a variant with the baseline over common random numbers.

Replication i of every variant runs with the same seed (`SeedSequence(seed).spawn(R)[i]`), so
the arrivals and work of the workload (and of each background entry) are the same draws in
every variant. The difference of a metric is then estimated from the per-replication
differences d_i = variant_i − baseline_i: mean d̄ with the paired Student-t interval
d̄ ± t(0.975, n−1)·s_d/√n. With common random numbers s_d is usually far smaller than the
spread of either variant, so a paired interval can exclude zero while the two variants' own
intervals still overlap; both facts are reported. A variant identical to the baseline gives
d_i = 0 exactly, hence a zero difference with a zero-width interval.

Replications where either value is missing (NaN: no task completed) are left out of the pair.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from simulator.replicate import t975

METRICS = ("makespan_hours", "mean_wait_hours", "mean_turnaround_hours", "p90_turnaround_hours",
           "evictions_per_task", "goodput_fraction", "pool_utilization")


def _value(run: Mapping[str, Any], metric: str) -> float:
    v = run.get(metric)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return math.nan
    return float(v)


def paired_difference(baseline_runs: Sequence[Mapping[str, Any]],
                      variant_runs: Sequence[Mapping[str, Any]], metric: str) -> dict[str, Any]:
    """{mean, ci95_low, ci95_high, n, relative, baseline_mean, significant} of variant − baseline.

    `relative` is the mean difference as a fraction of the baseline's mean over the same
    replications (None when that mean is zero); `significant` says whether the paired 95%
    interval excludes zero."""
    if len(baseline_runs) != len(variant_runs):
        raise ValueError("paired runs need the same number of replications")
    b = np.array([_value(r, metric) for r in baseline_runs], dtype=float)
    v = np.array([_value(r, metric) for r in variant_runs], dtype=float)
    ok = np.isfinite(b) & np.isfinite(v)
    n = int(ok.sum())
    nan = math.nan
    if n == 0:
        return {"mean": nan, "ci95_low": nan, "ci95_high": nan, "n": 0, "relative": None,
                "baseline_mean": nan, "significant": False}
    d = v[ok] - b[ok]
    mean = float(np.mean(d))
    if n >= 2:
        sd = float(np.std(d, ddof=1))
        half = t975(n - 1) * sd / math.sqrt(n)
        lo, hi = mean - half, mean + half
    else:
        lo = hi = nan
    base_mean = float(np.mean(b[ok]))
    relative = mean / base_mean if base_mean != 0 else None
    significant = bool(n >= 2 and (lo > 0 or hi < 0))
    return {"mean": mean, "ci95_low": lo, "ci95_high": hi, "n": n, "relative": relative,
            "baseline_mean": base_mean, "significant": significant}


def intervals_overlap(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool | None:
    """Whether two {ci95_low, ci95_high} intervals overlap (None when either is missing)."""
    vals = [a.get("ci95_low"), a.get("ci95_high"), b.get("ci95_low"), b.get("ci95_high")]
    if any(x is None or not isinstance(x, (int, float)) or math.isnan(x) for x in vals):
        return None
    a_lo, a_hi, b_lo, b_hi = (float(x) for x in vals)  # type: ignore[arg-type]
    return a_lo <= b_hi and b_lo <= a_hi


def compare_runs(baseline_runs: Sequence[Mapping[str, Any]], baseline_summary: Mapping[str, Any],
                 variant_runs: Sequence[Mapping[str, Any]], variant_summary: Mapping[str, Any],
                 metrics: Sequence[str] = METRICS) -> dict[str, Any]:
    """Per metric: the paired difference and whether the two variants' own CIs overlap."""
    out: dict[str, Any] = {}
    for m in metrics:
        diff = paired_difference(baseline_runs, variant_runs, m)
        diff["ci_overlap"] = intervals_overlap(baseline_summary.get(m, {}), variant_summary.get(m, {}))
        out[m] = diff
    return out


__all__ = ["METRICS", "compare_runs", "intervals_overlap", "paired_difference"]
