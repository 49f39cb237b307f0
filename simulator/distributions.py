"""Probability distributions named in scenario and pool files, in hours.

`{dist: fixed, value}`, `{dist: exponential, mean}`, `{dist: lognormal, mean, cv}`,
`{dist: weibull, scale, shape}`, `{dist: empirical, values: [...]}`. Each knows its own mean
and variance (the tests compare samples to them) and samples from a `numpy.random.Generator`
passed in: no global random state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.errors import ConfigError, nearest
from simulator.validate import known_keys, number

KINDS = ("fixed", "exponential", "lognormal", "weibull", "empirical")


@dataclass(frozen=True)
class Distribution:
    """A non-negative distribution. `params` holds the validated parameters of `kind`."""

    kind: str
    params: tuple[tuple[str, Any], ...]

    def p(self, key: str) -> Any:
        return dict(self.params)[key]

    @property
    def mean(self) -> float:
        k = self.kind
        if k == "fixed":
            return float(self.p("value"))
        if k in ("exponential", "lognormal"):
            return float(self.p("mean"))
        if k == "weibull":
            return float(self.p("scale")) * math.gamma(1.0 + 1.0 / float(self.p("shape")))
        return float(np.mean(self.p("values")))

    @property
    def variance(self) -> float:
        k = self.kind
        if k == "fixed":
            return 0.0
        if k == "exponential":
            return float(self.p("mean")) ** 2
        if k == "lognormal":
            return (float(self.p("mean")) * float(self.p("cv"))) ** 2
        if k == "weibull":
            scale, shape = float(self.p("scale")), float(self.p("shape"))
            return scale**2 * (math.gamma(1 + 2 / shape) - math.gamma(1 + 1 / shape) ** 2)
        return float(np.var(self.p("values")))

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        """One draw (a float) or `size` draws (an array)."""
        k = self.kind
        if k == "fixed":
            v = float(self.p("value"))
            return v if size is None else np.full(size, v)
        if k == "exponential":
            return rng.exponential(float(self.p("mean")), size)
        if k == "lognormal":
            mean, cv = float(self.p("mean")), float(self.p("cv"))
            sigma2 = math.log1p(cv * cv)
            mu = math.log(mean) - sigma2 / 2
            return rng.lognormal(mu, math.sqrt(sigma2), size)
        if k == "weibull":
            return float(self.p("scale")) * rng.weibull(float(self.p("shape")), size)
        values = np.asarray(self.p("values"), dtype=float)
        return rng.choice(values, size)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dist": self.kind}
        for key, val in self.params:
            out[key] = list(val) if isinstance(val, tuple) else val
        return out


_PARAMS = {
    "fixed": ("value",),
    "exponential": ("mean",),
    "lognormal": ("mean", "cv"),
    "weibull": ("scale", "shape"),
    "empirical": ("values",),
}


# Which parameters may be zero: a fixed or empirical duration of 0 h is meaningful (no work, no
# wait); a mean, scale, shape or coefficient of variation of 0 is not a distribution.
_ZERO_ALLOWED = ("value", "values")


def _param(value: Any, field: str, key: str) -> float:
    if key in _ZERO_ALLOWED:
        return float(number(value, field, minimum=0))
    return float(number(value, field, exclusive_minimum=0))


def parse_distribution(spec: Any, field: str, *, allow_none: bool = False) -> Distribution | None:
    """A validated Distribution from a mapping such as `{dist: exponential, mean: 6}`.

    A bare number means `fixed`. With `allow_none`, `none`/null means "never" and gives None.
    """
    if allow_none and (spec is None or (isinstance(spec, str) and spec.strip().lower() == "none")):
        return None
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return Distribution("fixed", (("value", _param(spec, field, "value")),))
    if not isinstance(spec, Mapping):
        hint = " or `none`" if allow_none else ""
        raise ConfigError(field, spec, "must be a distribution mapping.",
                          f"write e.g. {{dist: exponential, mean: 6.0}}{hint}.")
    kind = spec.get("dist")
    if not isinstance(kind, str) or kind not in _PARAMS:
        raise ConfigError(f"{field}.dist", kind, f"is not a known distribution ({', '.join(KINDS)}).",
                          "pick one of the named distributions.",
                          suggestions=nearest(str(kind), KINDS))
    expected = _PARAMS[kind]
    known_keys(spec, (*expected, "dist", "source"), field)
    params: list[tuple[str, Any]] = []
    for key in expected:
        if key not in spec:
            raise ConfigError(f"{field}.{key}", None, f"is missing: {kind} needs {', '.join(expected)}.",
                              f"add {key}.")
        val = spec[key]
        if key == "values":
            if not isinstance(val, (list, tuple)) or not val:
                raise ConfigError(f"{field}.values", val, "must be a non-empty list of numbers.",
                                  "write e.g. values: [1.5, 2.0, 7.25].")
            params.append((key, tuple(_param(v, f"{field}.values[{i}]", key)
                                      for i, v in enumerate(val))))
        else:
            params.append((key, _param(val, f"{field}.{key}", key)))
    return Distribution(kind, tuple(params))
