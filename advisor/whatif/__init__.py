"""What-if: variants of a scenario, simulated side by side with common random numbers.

`build_variants(scenario, ["pool.slots.H100.count=+16", "background.arrival.mean=*0.5"])`
turns each `--vary` argument into a validated variant (see `advisor.whatif.keys` for the key
syntax); `compare(baseline, variants, replications, seed)` runs every variant × replication on
one Dask cluster through `simulator.replicate.run_replications` (in-process by default;
`workers=0` runs inline, `scheduler=` uses an existing cluster) with the same replication seeds
for every variant, then reports each
variant's summary (mean and 95% CI per metric) and its paired difference from the baseline
(`advisor.whatif.compare`). Results do not depend on the number of workers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from advisor.errors import InputError
from advisor.whatif.compare import METRICS, compare_runs
from advisor.whatif.keys import apply_change, parse_variant
from simulator.catalog import load_catalog
from simulator.replicate import aggregate, run_replications
from simulator.scenario import Scenario

BASELINE = "baseline"


@dataclass(frozen=True)
class Variant:
    """A named scenario: the `--vary` text, the changes it made (for people), the scenario."""

    name: str
    changes: list[str]
    scenario: Scenario


@dataclass
class VariantResult:
    name: str
    changes: list[str]
    summary: dict[str, Any]
    runs: list[dict[str, Any]] = field(repr=False)
    difference: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, runs: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "changes": self.changes, "summary": self.summary}
        if self.name != BASELINE:
            out["difference"] = self.difference
        if runs:
            out["runs"] = self.runs
        return out


@dataclass
class WhatIf:
    scenario: str
    pool: str
    replications: int
    seed: int
    baseline: VariantResult
    variants: list[VariantResult]
    metrics: tuple[str, ...] = METRICS

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "pool": self.pool, "replications": self.replications,
                "seed": self.seed, "common_random_numbers": True, "metrics": list(self.metrics),
                "baseline": self.baseline.to_dict(),
                "variants": [v.to_dict() for v in self.variants]}


def make_variant(baseline: Scenario, text: str) -> Variant:
    """The variant of `baseline` described by one `--vary` argument."""
    d = baseline.to_dict()
    catalog = load_catalog()
    done: list[str] = []
    for change in parse_variant(text):
        if change.key in ("seed", "replications"):
            raise InputError("--vary", change.text, f"{change.key} is shared by every variant "
                             "(common random numbers).", f"use --{change.key} instead.")
        done.extend(apply_change(d, change, catalog))
    try:
        scenario = Scenario.from_dict(d, source=f"variant {text!r}")
    except InputError as exc:
        exc.source = f"--vary {text!r}"
        exc.args = (exc.render(),)
        raise
    return Variant(name=text.strip(), changes=done, scenario=scenario)


def build_variants(baseline: Scenario, texts: Sequence[str]) -> list[Variant]:
    names = [t.strip() for t in texts]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise InputError("--vary", n, "is given twice.", "give each variant once.")
    return [make_variant(baseline, t) for t in texts]


def compare(baseline: Scenario, variants: Sequence[Variant], replications: int | None = None,
            seed: int | None = None, *, workers: int = 1, scheduler: str | None = None,
            progress: Callable[[int, int], None] | None = None,
            metrics: Sequence[str] = METRICS) -> WhatIf:
    """Simulate the baseline and every variant with common random numbers and compare."""
    reps = int(replications if replications is not None else baseline.replications)
    base_seed = int(seed if seed is not None else baseline.seed)
    runs = run_replications([baseline, *(v.scenario for v in variants)], reps, base_seed,
                            workers=workers, scheduler=scheduler, progress=progress)
    base = VariantResult(BASELINE, [], aggregate(runs[0]), runs[0])
    results = []
    for v, vr in zip(variants, runs[1:], strict=True):
        summary = aggregate(vr)
        results.append(VariantResult(v.name, v.changes, summary, vr,
                                     compare_runs(runs[0], base.summary, vr, summary, metrics)))
    return WhatIf(scenario=baseline.name, pool=baseline.pool.name, replications=reps,
                  seed=base_seed, baseline=base, variants=results, metrics=tuple(metrics))


__all__ = ["BASELINE", "Variant", "VariantResult", "WhatIf", "build_variants", "compare",
           "make_variant"]
