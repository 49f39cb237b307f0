"""Show a pool: GPUs by type (capability, memory, count, shared or backfill-only), length tiers
with per-user limits, eviction, CPU slots, data rules. Without a name, list the shipped pools.

Examples: advisor pools; advisor pools chtc --json; advisor pools my_pool.yaml
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from advisor.output import CommandResult
from simulator.pool import Pool, load_pool
from simulator.shipped import shipped_pool_names

HELP = "show a shipped pool (chtc, ospool) or a pool file; list them without a name"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pool", nargs="?", metavar="NAME|PATH",
                        help="a shipped pool name or a pool YAML file")


def pool_summary(pool: Pool) -> dict[str, Any]:
    """The pool as plain data: what `advisor pools NAME --json` prints."""
    by_type: dict[tuple[str, bool], dict[str, Any]] = {}
    for s in pool.slots:
        key = (s.gpu, s.backfill_only)
        row = by_type.setdefault(key, {
            "gpu": s.gpu, "capability": s.capability, "memory_gb": s.gpu_memory_gb, "count": 0,
            "owner": s.owner, "backfill_only": s.backfill_only, "cpus_per_gpu": s.cpus,
            "memory_gb_per_gpu": s.memory_gb, "disk_gb_per_gpu": s.disk_gb,
            "time_to_eviction": s.time_to_eviction.to_dict() if s.time_to_eviction else None,
            "source": s.source})
        row["count"] += s.count
    shared = pool.shared_gpus
    return {
        "name": pool.name, "description": pool.description, "scheduler": pool.scheduler,
        "tier_attribute": pool.tier_attribute,
        "gpus_total": pool.total_gpus, "gpus_shared": shared,
        "gpus_backfill_only": pool.total_gpus - shared,
        "gpus": list(by_type.values()),
        "tiers": [{"name": t.name, "max_hours": t.max_hours, "expected_hours": t.expected_hours,
                   "default": t.default, "per_user_share": t.per_user_share,
                   "per_user_gpus": t.per_user_gpus,
                   "per_user_limit_gpus": t.per_user_limit(shared), "source": t.source}
                  for t in pool.tiers],
        "cpu_slots": None if pool.cpu_slots is None else {
            "count": pool.cpu_slots.count, "memory_gb": pool.cpu_slots.memory_gb,
            "max_hours": pool.cpu_slots.max_hours, "source": pool.cpu_slots.source},
        "data_rules": [{"max_gb": r.max_gb, "method": r.method, "how": r.how} for r in pool.data_rules],
        "fit_table": dict(pool.fit_table), "limits": dict(pool.limits),
        "assumptions": list(pool.assumptions), "source": pool.source,
    }


def run(args: argparse.Namespace) -> CommandResult:
    if not args.pool:
        listing: list[dict[str, Any]] = []
        for name in shipped_pool_names():
            p = load_pool(name)
            listing.append({"name": p.name, "gpus_total": p.total_gpus, "gpus_shared": p.shared_gpus,
                            "tiers": [t.name for t in p.tiers], "description": p.description})

        def render_list(console: Console) -> None:
            table = Table(title="Shipped pools", caption="Show one with: advisor pools NAME")
            for col in ("pool", "GPUs", "shared", "tiers", "description"):
                table.add_column(col)
            for p in listing:
                table.add_row(p["name"], str(p["gpus_total"]), str(p["gpus_shared"]),
                              ", ".join(p["tiers"]), p["description"])
            console.print(table)

        return CommandResult({"pools": listing}, render_list)

    summary = pool_summary(load_pool(args.pool))

    def render(console: Console) -> None:
        gpus = Table(title=f"Pool {summary['name']}: {summary['gpus_shared']} shared GPUs"
                     f" + {summary['gpus_backfill_only']} backfill-only",
                     caption=summary["description"])
        for col in ("GPU", "CC", "GPU memory GB", "count", "access", "CPUs/GPU", "memory GB/GPU",
                    "eviction"):
            gpus.add_column(col, justify="left" if col in ("GPU", "access") else "right")
        for g in sorted(summary["gpus"], key=lambda g: (g["backfill_only"], g["capability"])):
            ev = g["time_to_eviction"]
            ev_text = "none" if ev is None else (
                f"{ev['dist']}, mean {ev['mean']:g} h" if "mean" in ev else ev["dist"])
            gpus.add_row(g["gpu"], f"{g['capability']:.1f}", f"{g['memory_gb']:g}", str(g["count"]),
                         "backfill only" if g["backfill_only"] else "shared",
                         str(g["cpus_per_gpu"]), f"{g['memory_gb_per_gpu']:g}", ev_text)
        console.print(gpus)
        if summary["tiers"]:
            tiers = Table(title=f"Length tiers ({summary['tier_attribute'] or 'tier'})")
            for col in ("tier", "max runtime", "per-user limit", "default"):
                tiers.add_column(col)
            for t in summary["tiers"]:
                hours = t["max_hours"]
                runtime = f"{hours / 24:g} days" if hours >= 48 else f"{hours:g} h"
                if t["per_user_gpus"] is not None:
                    limit = f"{t['per_user_gpus']} GPUs"
                elif t["per_user_share"] is not None:
                    limit = f"{t['per_user_share']:.0%} of shared GPUs ({t['per_user_limit_gpus']})"
                else:
                    limit = "none"
                tiers.add_row(t["name"], runtime, limit, "yes" if t["default"] else "")
            console.print(tiers)
        if summary["cpu_slots"]:
            c = summary["cpu_slots"]
            console.print(f"CPU slots: {c['count']} cores, {c['memory_gb']:g} GB each"
                          + (f", up to {c['max_hours']:g} h" if c["max_hours"] else ""))
        for a in summary["assumptions"]:
            console.print(f"[dim]assumption: {a}[/dim]")

    return CommandResult(summary, render)
