"""Is this workload HTC-able? A verdict with reasons that name numbers and rules.

Verdicts: `htc-able`, `htc-able-with-checkpointing`, `not-a-fit`. Each rule in
`advisor.assess.rules` returns checks with a status (`ok`, `info`, `warn`, `checkpoint`,
`fail`): any `fail` makes the workload not a fit; otherwise any `checkpoint` makes it HTC-able
with checkpointing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from advisor.assess.rules import RULES, Check, Context
from advisor.assess.runtime import GpuOption, gpu_options
from advisor.workload import Workload
from simulator.catalog import Catalog, load_catalog
from simulator.pool import Pool

VERDICTS = ("htc-able", "htc-able-with-checkpointing", "not-a-fit")


@dataclass
class Assessment:
    workload: str
    pool: str
    verdict: str
    reasons: list[str]
    checks: list[Check]
    options: list[GpuOption]
    advice: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload, "pool": self.pool, "verdict": self.verdict,
            "reasons": self.reasons, "advice": self.advice,
            "checks": [c.to_dict() for c in self.checks],
            "gpus": [{"gpu": o.gpu, "capability": o.capability, "memory_gb": o.gpu_memory_gb,
                      "shared": o.shared, "backfill": o.backfill, "fits": o.fits,
                      "needed_memory_gb": round(o.needed_memory_gb, 2), "speed": round(o.speed, 3),
                      "task_hours": o.task_hours, "bound": o.bound, "method": o.method,
                      "notes": list(o.reasons)} for o in self.options],
            "facts": self.facts,
        }


def assess(workload: Workload, pool: Pool, catalog: Catalog | None = None) -> Assessment:
    catalog = catalog or load_catalog()
    options = gpu_options(workload, pool, catalog)
    ctx = Context(workload=workload, pool=pool, catalog=catalog, options=options)
    checks: list[Check] = []
    for rule in RULES:
        checks.extend(rule(ctx))
    if any(c.status == "fail" for c in checks):
        verdict = "not-a-fit"
    elif any(c.status == "checkpoint" for c in checks):
        verdict = "htc-able-with-checkpointing"
    else:
        verdict = "htc-able"
    order = {"fail": 0, "checkpoint": 1, "warn": 2, "ok": 3, "info": 4}
    reasons = [c.text for c in sorted(checks, key=lambda c: order[c.status])
               if c.status in ("fail", "checkpoint", "warn", "ok")]
    reasons += [c.text for c in checks if c.status == "info"]
    advice = [a for c in checks for a in c.advice]
    if verdict == "not-a-fit":
        advice.extend(ctx.instead)
    return Assessment(workload=workload.name, pool=pool.name, verdict=verdict, reasons=reasons,
                      checks=checks, options=options, advice=list(dict.fromkeys(advice)),
                      facts=ctx.facts)


__all__ = ["VERDICTS", "Assessment", "assess"]
