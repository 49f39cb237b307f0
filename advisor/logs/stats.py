"""Small statistics for log analysis: quantiles and the exact Poisson (chi-square) interval.

No scipy: the chi-square quantile is the gamma quantile, found by bisection on the regularized
lower incomplete gamma function (series and continued fraction, as in Numerical Recipes §6.2).
The tests compare it with `scipy.stats.chi2.ppf`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def gamma_p(a: float, x: float) -> float:
    """Regularized lower incomplete gamma P(a, x) for a > 0, x >= 0."""
    if a <= 0:
        raise ValueError(f"gamma_p: shape a = {a!r} must be > 0")
    if x <= 0:
        return 0.0
    log_prefix = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:  # series
        term = 1.0 / a
        total = term
        ap = a
        for _ in range(10_000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return min(1.0, total * math.exp(log_prefix))
    # continued fraction for Q(a, x) (modified Lentz)
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return max(0.0, 1.0 - math.exp(log_prefix) * h)


def gamma_ppf(p: float, a: float) -> float:
    """Quantile of the unit-scale gamma distribution with shape `a`."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"gamma_ppf: probability p = {p!r} must be in (0, 1)")
    lo, hi = 0.0, max(1.0, a)
    while gamma_p(a, hi) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if gamma_p(a, mid) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def chi2_ppf(p: float, dof: float) -> float:
    """Quantile of the chi-square distribution with `dof` degrees of freedom."""
    return 2.0 * gamma_ppf(p, dof / 2.0)


def poisson_rate_interval(events: int, exposure: float, confidence: float = 0.95
                          ) -> tuple[float, float]:
    """Exact (Garwood) interval for a Poisson rate: `events` seen in `exposure` units of time.

    lower = χ²(α/2; 2k) / 2T (0 when k = 0), upper = χ²(1−α/2; 2k+2) / 2T.
    """
    if exposure <= 0:
        raise ValueError(f"exposure = {exposure!r} must be > 0")
    if events < 0:
        raise ValueError(f"events = {events!r} must be >= 0")
    alpha = 1.0 - confidence
    lower = 0.0 if events == 0 else chi2_ppf(alpha / 2.0, 2 * events) / (2.0 * exposure)
    upper = chi2_ppf(1.0 - alpha / 2.0, 2 * events + 2) / (2.0 * exposure)
    return lower, upper


def distribution(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """n, mean, p50, p95, max of the values that are known (None left out)."""
    known = [float(v) for v in values if v is not None]
    if not known:
        return {"n": 0, "mean": None, "p50": None, "p95": None, "max": None}
    arr = np.asarray(known, dtype=float)
    return {
        "n": int(arr.size),
        "mean": float(arr.mean()),
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "max": float(arr.max()),
    }
