"""One self-contained HTML page for a consultation: the verdict and its reasons, the recommended
submit file, the per-GPU fit table, the simulated distribution of time-to-results, expected wall
time against the checkpoint interval, a what-if on backfill, and every assumption made.

`build_report(workload, pool_ref)` runs `advisor.recommend.recommend`, then simulates a little
more for the figures:

* time-to-results: `plot_replications` replications of the chosen candidate's scenario (the
  scenario `recommend` simulated, built from the recommendation's plan by
  `advisor.recommend.plan.plan_scenario`, with the same seeds: the first `replications` of them
  are the runs `recommend` chose by);
* checkpointing: Daly's T_w(τ) from `simulator.theory` with the mean time to eviction, checkpoint
  and restart costs the recommendation explains (its checkpoint story, or its Daly numbers with
  backfill when the request does not checkpoint), the same for exit-85 checkpoints restarting in
  place (`in_place_expected_wall_time`: restart gap, the pool's mean restart delay after an
  eviction), a few simulated intervals of one job alone on one GPU (exit 85, as the submit file
  does them), and beside it the recommendation's `interval_curve` (the campaign's simulated time
  to results against the interval, with its 95% CI) when it has one;
* what-if: the chosen request against the same with `+is_resumable` flipped (taken from the
  candidates `recommend` simulated, with common random numbers; simulated here when it is not
  among them).

A workload that is not a fit still gets a page (verdict, reasons, what to do instead, the fit
table, assumptions) but no submit file; `Report.exit_code` is then 1. `write_report` writes the
page atomically.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from advisor.output import atomic_write
from advisor.recommend import DEFAULT_BACKGROUND_LOAD, Evaluated, Recommendation, recommend
from advisor.recommend.candidates import Candidate, Space
from advisor.recommend.evaluate import evaluate
from advisor.recommend.plan import Plan, plan_scenario
from advisor.report import html as h
from advisor.report import plots
from advisor.report.model import (
    CHECKPOINT_REPLICATIONS,
    CHECKPOINT_SEGMENTS,
    Report,
    TimeToResults,
    WhatIf,
    outcome_mean,
)
from advisor.report.sections import render_sections
from advisor.workload import Workload
from simulator.catalog import Catalog, load_catalog
from simulator.pool import Pool, load_pool
from simulator.replicate import interval, replication_seeds, run_summary
from simulator.scenario import DEFAULT_RESTART_GAP_SECONDS, Scenario

DEFAULT_PLOT_REPLICATIONS = 20
SECTION_IDS = ("verdict", "submit-file", "fit-table", "time-to-results", "checkpoint", "whatif",
               "assumptions")

Progress = Callable[[int, int, str], None]


# --- the simulations behind the figures -----------------------------------------------------

def simulate_time_to_results(scenario: Scenario, scale: float, replications: int,
                             seed: int) -> TimeToResults:
    values, held = [], 0
    for ss in replication_seeds(seed, replications):
        r = run_summary(scenario, ss)
        if r["tasks_held"] == 0 and r["tasks_completed"] == r["tasks"]:
            values.append(float(r["makespan_hours"]) * scale)
        else:
            held += 1
    return TimeToResults(values_hours=values, held_runs=held, replications=replications, scale=scale)


def job_work_hours(space: Space, cand: Candidate, resumable: bool) -> float:
    """One job's hours of work, averaged over the GPUs it may land on (weighted by count)."""
    considered = space.considered(cand.min_capability, resumable)
    weights = [o.shared + (o.backfill if resumable else 0) for o in considered]
    hours = [space.job_hours(o, cand.items_per_job) for o in considered]
    if not hours or sum(weights) == 0:
        return 0.0
    return float(np.average(hours, weights=weights))


def simulate_checkpoint_points(work_hours: float, mtte_hours: float, cost_hours: float,
                               restart_hours: float, intervals_hours: list[float], seed: int,
                               replications: int = CHECKPOINT_REPLICATIONS,
                               delay_hours: float = 0.0) -> list[plots.SimulatedPoint]:
    """One job alone on one GPU, evicted after exponential times of mean `mtte_hours` and
    runnable again `delay_hours` later, checkpointing by exit 85 every τ (restarting in place after
    the default gap). At most CHECKPOINT_SEGMENTS intervals of work are simulated and the wall
    time scaled to `work_hours` (T_w is proportional to the work for whole segments)."""
    out = []
    for tau in intervals_hours:
        sim_work = min(work_hours, CHECKPOINT_SEGMENTS * tau)
        scale = work_hours / sim_work
        scn = Scenario.from_dict({
            "name": f"checkpoint every {tau * 60:.0f} min", "seed": seed, "fair_share": "none",
            "pool": {"name": "one-gpu", "slots": [{"gpu": "A100-SXM4-80GB", "count": 1}]},
            "eviction": {"time_to_eviction": {"dist": "exponential", "mean": mtte_hours},
                         "restart_delay_hours": {"dist": "fixed", "value": delay_hours}
                         if delay_hours > 0 else "none"},
            "workload": {"tasks": 1, "work_hours": {"dist": "fixed", "value": sim_work},
                         "reference_gpu": "A100-SXM4-80GB", "request": {"gpus": 1},
                         "checkpoint": {"mode": "exit", "interval_minutes": tau * 60,
                                        "cost_seconds": cost_hours * 3600,
                                        "restart_seconds": restart_hours * 3600}},
        }, source="report checkpoint points")
        walls = [run_summary(scn, ss)["makespan_hours"] * scale
                 for ss in replication_seeds(seed, replications)]
        ci = interval(walls)
        out.append(plots.SimulatedPoint(tau, ci["mean"], ci["ci95_low"], ci["ci95_high"]))
    return out


def find_backfill_variant(rec: Recommendation) -> Evaluated | None:
    """Among recommend's candidates: the chosen one with +is_resumable flipped (same floor, items,
    CPU slots); the same checkpoint interval if simulated, else the best of that family."""
    chosen = rec.chosen
    if chosen is None:
        return None
    c = chosen.candidate
    family = [e for e in rec.candidates if e.outcome is not None and e.candidate.why_not is None
              and e.candidate.is_resumable != c.is_resumable
              and e.candidate.min_capability == c.min_capability
              and e.candidate.items_per_job == c.items_per_job and e.candidate.cpu_ok == c.cpu_ok]
    same = [e for e in family if e.candidate.checkpoint_interval_hours == c.checkpoint_interval_hours]
    pool = same or family
    if not pool:
        return None
    return min(pool, key=lambda e: outcome_mean(e.outcome))




# --- the page -------------------------------------------------------------------------------

def build_report(workload: Workload, pool_ref: str | Path, *, catalog: Catalog | None = None,
                 objective: str = "mean", replications: int = 4,
                 plot_replications: int = DEFAULT_PLOT_REPLICATIONS, seed: int = 1,
                 background_load: float = DEFAULT_BACKGROUND_LOAD, checkpoint_points: bool = True,
                 command: str | None = None, progress: Progress | None = None) -> Report:
    """Recommend, simulate the figures' extra runs, and render the page (nothing is written)."""
    from advisor.errors import InputError

    if plot_replications < 2:
        raise InputError("--plot-replications", plot_replications, "must be 2 or more.",
                         "give e.g. 20 (a distribution needs several runs).")
    catalog = catalog or load_catalog()
    pool = load_pool(pool_ref, catalog=catalog)
    steps = 4

    def phase(i: int, label: str) -> None:
        if progress:
            progress(i, steps, label)

    def rec_progress(done: int, total: int, label: str) -> None:
        phase(0, f"recommend: {label} ({done}/{total})")

    rec = recommend(workload, pool_ref, catalog=catalog, objective=objective,
                    replications=replications, seed=seed, background_load=background_load,
                    progress=rec_progress)
    dist: TimeToResults | None = None
    whatifs: list[WhatIf] = []
    ckpt: dict[str, Any] = {}
    figs: dict[str, plots.Figure] = {}
    chosen = rec.chosen
    if rec.request is not None and chosen is not None and chosen.outcome is not None:
        plan = rec.plan
        assert plan is not None and plan.space is not None
        space = plan.space
        c = chosen.candidate
        phase(1, f"time-to-results: {plot_replications} replications")
        scn, scale = plan_scenario(plan, c)
        dist = simulate_time_to_results(scn, scale, plot_replications, seed)
        if dist.values_hours:
            figs["ttr"] = plots.time_to_results(
                dist.values_hours, expected_mean_hours=rec.expected["time_to_results_hours"]["mean"],
                label=c.label, held_runs=dist.held_runs)
        phase(2, "checkpoint interval")
        ckpt = _checkpoint_numbers(rec, space, c, pool)
        if ckpt.get("plot"):
            points: list[plots.SimulatedPoint] = []
            if checkpoint_points:
                points = simulate_checkpoint_points(
                    ckpt["work_hours"], ckpt["mtte_hours"], ckpt["cost_hours"], ckpt["restart_hours"],
                    ckpt["sim_intervals_hours"], seed, delay_hours=ckpt["delay_hours"])
                ckpt["simulated"] = [p.__dict__ for p in points]
            figs["checkpoint"] = plots.checkpoint_curve(
                work_hours=ckpt["work_hours"], mtte_hours=ckpt["mtte_hours"],
                cost_hours=ckpt["cost_hours"], restart_hours=ckpt["restart_hours"],
                chosen_interval_hours=None if ckpt["hypothetical"] else c.checkpoint_interval_hours,
                daly_interval_hours=ckpt["daly_interval_hours"], guidance_hours=ckpt.get("guidance"),
                simulated=points, hypothetical=ckpt["hypothetical"], gap_hours=ckpt["gap_hours"],
                delay_hours=ckpt["delay_hours"], interval_curve=_curve_points(rec))
        phase(3, "what-if: backfill, busier pool")
        whatifs = [_backfill_whatif(rec, plan, replications, seed)]
        busier = _busier_whatif(rec, plan, replications, seed)
        if busier is not None:
            whatifs.append(busier)
        shown = [w for w in whatifs if w.variant is not None and w.variant.outcome is not None]
        if shown:
            bars = [_bar("recommended", chosen)] + [_bar(f"what if: {w.name}", w.variant) for w in shown
                                                    if w.variant is not None]
            if sum(math.isfinite(b.mean_hours) for b in bars) > 1:
                figs["whatif"] = plots.compare_bars(
                    bars, title="What if: the recommended request against variants",
                    subtitle=f"{replications} replication{'s' if replications != 1 else ''} each, "
                             "common random numbers")
    phase(4, "page")
    sections = render_sections(rec, workload, pool, catalog, dist, ckpt, whatifs, figs, replications)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meta = (f"Workload {workload.name} ({workload.kind}, {workload.tasks:,} task"
            f"{'s' if workload.tasks != 1 else ''}) on pool {pool.name} · prepared {when}")
    footer = h.Safe(
        "Generated by <code>advisor report</code>"
        + (f" — reproduce with <code>{h.esc(command)}</code>" if command else "")
        + f". Python {h.esc(platform.python_version())}; simulator seed {seed}. "
        "Every number in this page is an estimate from the stated inputs and assumptions.")
    text = h.page(title=f"Consultation: {workload.name} on {pool.name}",
                  heading=f"{workload.name} on {pool.name}",
                  meta=meta, verdict=rec.verdict, sections=sections, footer=footer)
    return Report(html=text, workload=workload.name, pool=pool.name, verdict=rec.verdict,
                  sections=[s[0] for s in sections], recommendation=rec, time_to_results=dist,
                  whatifs=whatifs, checkpoint={k: v for k, v in ckpt.items() if k != "plot"})


def write_report(report: Report, path: str | Path) -> Path:
    return atomic_write(path, report.html, mode=0o644)


def _checkpoint_numbers(rec: Recommendation, space: Space, c: Candidate, pool: Pool) -> dict[str, Any]:
    story = rec.checkpoint
    daly = story.get("daly")
    hypothetical = daly is None
    if daly is None:        # the request does not checkpoint: what it would face as backfill
        daly = rec.daly_with_backfill
        if daly is None:
            return {"plot": False, "explanation": story.get("explanation", "")}
    work = job_work_hours(space, c, c.is_resumable or hypothetical)
    if work <= 0:
        return {"plot": False, "explanation": story.get("explanation", "")}
    tau_d = float(daly["daly_interval_hours"])
    taus = {round(tau_d * f, 4) for f in (0.25, 0.5, 1.0, 2.0, 4.0)}
    if c.checkpoint_interval_hours and not hypothetical:
        taus.add(round(c.checkpoint_interval_hours, 4))
    guidance = pool.checkpoint_guidance
    # exit 85 restarts in place after the scenario's default gap; an eviction's restart delay is the
    # pool's mean (the expected wall time is linear in it)
    gap = DEFAULT_RESTART_GAP_SECONDS / 3600
    delay = pool.restart_delay.mean if pool.restart_delay is not None else 0.0
    return {
        "plot": True, "hypothetical": hypothetical, "work_hours": work,
        "mtte_hours": float(daly["mean_time_to_eviction_hours"]),
        "cost_hours": float(daly["checkpoint_cost_hours"]), "restart_hours": float(daly["restart_hours"]),
        "daly_interval_hours": tau_d,
        "gap_hours": gap, "delay_hours": delay,
        "in_place_optimum_hours": plots.in_place_optimum(
            work, float(daly["checkpoint_cost_hours"]), float(daly["restart_hours"]), gap,
            float(daly["mean_time_to_eviction_hours"]), delay),
        "chosen_interval_hours": None if hypothetical else c.checkpoint_interval_hours,
        "sim_intervals_hours": sorted(t for t in taus if 0 < t < work),
        "guidance": (guidance.min_hours, guidance.max_hours) if guidance else None,
        "explanation": story.get("explanation", ""),
    }


def _curve_points(rec: Recommendation) -> list[plots.CurvePoint]:
    """The recommendation's simulated interval curve (checkpointing intervals only)."""
    return [plots.CurvePoint(r["interval_minutes"] / 60, r["mean_hours"], r["ci95_low_hours"],
                             r["ci95_high_hours"], bool(r["chosen"]))
            for r in rec.checkpoint.get("interval_curve") or [] if r["interval_minutes"]]


def _backfill_whatif(rec: Recommendation, plan: Plan, replications: int, seed: int) -> WhatIf:
    chosen = rec.chosen
    assert chosen is not None and plan.space is not None
    space, pool = plan.space, plan.pool
    c = chosen.candidate
    name = "without backfill" if c.is_resumable else "with backfill"
    q = ("without backfill (+is_resumable = false): only the shared GPUs" if c.is_resumable else
         "with backfill (+is_resumable = true): research groups' GPUs too, evictable when owners return")

    def what(variant: Evaluated | None, source: str, note: str = "") -> WhatIf:
        return WhatIf("backfill", name, q, chosen, variant, source, note)

    if not any(s.backfill_only for s in pool.slots):
        return what(None, "none", f"Pool {pool.name} has no owned GPUs to backfill: +is_resumable "
                    "changes nothing here.")
    found = find_backfill_variant(rec)
    if found is not None:
        return what(found, "recommend")
    flipped = Candidate(c.min_capability, c.job_length, not c.is_resumable, c.checkpoint_interval_hours,
                        c.items_per_job, c.cpu_ok)
    if not space.considered(flipped.min_capability, flipped.is_resumable):
        return what(None, "none", "No GPU the request accepts is left without backfill.")
    scn, scale = plan_scenario(plan, flipped)
    return what(Evaluated(flipped, evaluate(scn, scale, replications, seed)), "simulated here")


BUSIER_BY = 0.2          # the busier-pool what-if: other users' share of the shared GPUs + 0.2
BUSIEST = 0.9


def _busier_whatif(rec: Recommendation, plan: Plan, replications: int, seed: int) -> WhatIf | None:
    """The recommended request while other users keep more of the shared GPUs busy."""
    chosen = rec.chosen
    assert chosen is not None
    load = plan.background_load
    busier = min(BUSIEST, load + BUSIER_BY)
    if busier <= load:
        return None
    scn, scale = plan_scenario(plan, chosen.candidate, busier)
    variant = Evaluated(chosen.candidate, evaluate(scn, scale, replications, seed))
    return WhatIf("busier", f"busier pool ({busier:.0%})",
                  f"on a busier pool, other users keeping {busier:.0%} of the shared GPUs busy instead "
                  f"of {load:.0%}", chosen, variant, "simulated here")


def _bar(label: str, e: Evaluated | None) -> plots.Bar:
    assert e is not None and e.outcome is not None
    t = e.outcome.time_to_results_hours
    return plots.Bar(label, t["mean"], t["ci95_low"], t["ci95_high"], t["p90"], e.chosen and label == "recommended")


# --- sections -------------------------------------------------------------------------------

__all__ = ["DEFAULT_PLOT_REPLICATIONS", "SECTION_IDS", "Report", "TimeToResults", "WhatIf",
           "build_report", "write_report"]
