"""Pools side by side: `advisor recommend|assess WORKLOAD --pool chtc,ospool` (any list).

Each pool gets its own answer, exactly as with `--pool NAME`; then the comparison says which
finishes sooner, by how much and beyond the noise or not, and the facts of each pool that make
the difference (docs/DOMAIN.md §3-4): evictions on the slots the job uses, the length tiers and
their attribute (`+GPUJobLength`, `+JobDurationCategory`), whether `/staging` is mounted.
"""

from __future__ import annotations

import argparse
import copy
import math
from typing import Any

from rich.console import Console

from advisor.errors import InputError
from advisor.output import CommandResult
from advisor.units import fmt_hours
from simulator.pool import Pool

MAX_POOLS = 4


def pool_list(text: str) -> list[str]:
    """`chtc,ospool` → ["chtc", "ospool"]: at least two, each named once."""
    names = [p.strip() for p in str(text).split(",")]
    if any(not n for n in names) or len(names) < 2:
        raise InputError("--pool", text, "is not a list of pools.",
                         "name two or more pools separated by commas, e.g. --pool chtc,ospool.")
    if len(set(names)) != len(names):
        raise InputError("--pool", text, "names a pool twice.", "name each pool once.")
    if len(names) > MAX_POOLS:
        raise InputError("--pool", text, f"names {len(names)} pools (at most {MAX_POOLS}).",
                         f"compare at most {MAX_POOLS} pools at once.")
    return names


def pool_facts(pool: Pool) -> list[str]:
    """What sets the pool apart for a job: evictions, tiers, /staging."""
    facts = []
    shared_ev = [s.time_to_eviction.mean for s in pool.slots
                 if not s.backfill_only and s.time_to_eviction is not None]
    owned = [s for s in pool.slots if s.backfill_only]
    if shared_ev:
        facts.append(f"every slot may be preempted (mean {min(shared_ev):g} h between evictions, "
                     "an assumption to calibrate)")
    else:
        facts.append("its shared GPUs are not preempted"
                     + (f"; {sum(s.count for s in owned)} owned GPUs are evictable backfill" if owned else ""))
    if pool.tiers:
        tiers = ", ".join(f"{t.name} {t.max_hours:g} h" for t in pool.tiers)
        facts.append(f"runs are held past their tier ({pool.tier_attribute or 'tier'}: {tiers})")
    staging = pool.storage.get("staging") or {}
    if staging.get("mounted_on_execute_points") is False:
        facts.append("no /staging on its execute points (large files go through OSDF)")
    return facts


def _mean_ci(ttr: dict[str, float]) -> str:
    return (f"{fmt_hours(ttr['mean'])} (95% CI {fmt_hours(ttr['ci95_low'])}–"
            f"{fmt_hours(ttr['ci95_high'])})")


def compare_recommendations(answers: list[dict[str, Any]], pools: list[Pool]) -> dict[str, Any]:
    """Which pool's recommendation (`Recommendation.to_dict()`) finishes sooner, and why."""
    rows: list[dict[str, Any]] = []
    for rec, pool in zip(answers, pools, strict=True):
        ttr = (rec.get("expected") or {}).get("time_to_results_hours")
        chosen = next((c["label"] for c in rec.get("candidates") or [] if c.get("chosen")), None)
        rows.append({"pool": pool.name, "verdict": rec.get("verdict"),
                     "time_to_results_hours": ttr, "facts": pool_facts(pool), "plan": chosen})
    ok = [r for r in rows if r["time_to_results_hours"] and math.isfinite(r["time_to_results_hours"]["mean"])]
    out: dict[str, Any] = {"pools": rows, "sooner": None}
    if not ok:
        out["why"] = "No pool has a plan that finishes: see each pool's reasons."
        return out
    ok.sort(key=lambda r: r["time_to_results_hours"]["mean"])
    best = ok[0]
    out["sooner"] = best["pool"]
    if len(ok) == 1:
        out["why"] = (f"Only {best['pool']} has a plan that finishes ({_mean_ci(best['time_to_results_hours'])}); "
                      + "; ".join(f"{r['pool']}: {r['verdict']}" for r in rows if r is not best) + ".")
        return out
    second = ok[1]
    a, b = best["time_to_results_hours"], second["time_to_results_hours"]
    clear = a["ci95_high"] < b["ci95_low"]
    out["beyond_noise"] = clear
    out["why"] = (f"{best['pool']} finishes sooner: {_mean_ci(a)} against {_mean_ci(b)} on {second['pool']}"
                  + ("" if clear else ", within the noise of the simulation (the intervals overlap)")
                  + ". " + " ".join(f"{r['pool']}: {'; '.join(r['facts'])} (plan: {r['plan'] or 'none'})."
                                    for r in rows))
    return out


def compare_assessments(answers: list[dict[str, Any]], pools: list[Pool]) -> dict[str, Any]:
    """The verdicts (`Assessment.to_dict()`) side by side, with the facts of each pool."""
    order = ["htc-able", "htc-able-with-checkpointing", "not-a-fit"]
    rows: list[dict[str, Any]] = [{"pool": p.name, "verdict": r.get("verdict"), "facts": pool_facts(p)}
            for r, p in zip(answers, pools, strict=True)]
    best = min(rows, key=lambda r: order.index(r["verdict"]))
    same = len({r["verdict"] for r in rows}) == 1
    return {"pools": rows, "easier": None if same else best["pool"],
            "why": ("The same verdict on every pool. " if same else
                    f"{best['pool']} is the easier fit ({best['verdict']}). ")
            + " ".join(f"{r['pool']}: {'; '.join(r['facts'])}." for r in rows)}


def _per_pool(args: argparse.Namespace, name: str) -> argparse.Namespace:
    one = copy.copy(args)
    one.pool = name
    return one


def run_pools(args: argparse.Namespace, run_one: Any, kind: str) -> CommandResult:
    """Run the command `run_one(args)` once per pool of `--pool A,B` and compare the answers."""
    from simulator.pool import load_pool

    names = pool_list(args.pool)
    if getattr(args, "output", None):
        raise InputError("-o", args.output, "writes one job set; several pools were given.",
                         "give one --pool with -o, or drop -o to compare the pools.")
    results = [run_one(_per_pool(args, n)) for n in names]
    pools = [load_pool(n) for n in names]
    answers = [r.data for r in results]
    comparison = (compare_recommendations(answers, pools) if kind == "recommend"
                  else compare_assessments(answers, pools))
    data = {"pools": dict(zip(names, answers, strict=True)), "comparison": comparison}

    def render(console: Console) -> None:
        for name, r in zip(names, results, strict=True):
            console.rule(f"{kind} on {name}")
            if r.render is not None:
                r.render(console)
        console.rule("side by side")
        console.print(comparison["why"], highlight=False)

    exit_code = 0 if any(r.exit_code == 0 for r in results) else max(r.exit_code for r in results)
    return CommandResult(data, render, exit_code=exit_code)
