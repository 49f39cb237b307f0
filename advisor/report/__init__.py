"""One self-contained HTML page for a consultation: the verdict and its reasons, the recommended
submit file, the per-GPU fit table, the simulated distribution of time-to-results, expected wall
time against the checkpoint interval, a what-if on backfill, and every assumption made.

`build_report(workload, pool_ref)` runs `advisor.recommend.recommend`, then simulates a little
more for the figures:

* time-to-results: `plot_replications` replications of the chosen candidate's scenario (the
  scenario `recommend` simulated, from `advisor.recommend.evaluate.scenario_for`, with the same
  seeds: the first `replications` of them are the runs `recommend` chose by);
* checkpointing: Daly's T_w(τ) from `simulator.theory` with the recommendation's mean time to
  eviction, checkpoint and restart costs, plus a few simulated intervals of one job alone on one
  GPU (exit-driven checkpoints, as the submit file does them);
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
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from advisor.assess import Assessment
from advisor.assess.rules import fmt_hours
from advisor.output import atomic_write
from advisor.recommend import DEFAULT_BACKGROUND_LOAD, Evaluated, Recommendation, recommend
from advisor.recommend.candidates import Candidate, CheckpointCosts, Space
from advisor.recommend.evaluate import Outcome, evaluate, scenario_for
from advisor.recommend.sizing import Sizing, size_request
from advisor.report import html as h
from advisor.report import plots
from advisor.workload import Workload
from simulator.catalog import Catalog, load_catalog
from simulator.pool import Pool, load_pool
from simulator.replicate import interval, replication_seeds, run_summary
from simulator.scenario import Scenario

DEFAULT_PLOT_REPLICATIONS = 20
CHECKPOINT_REPLICATIONS = 12          # per simulated interval
CHECKPOINT_SEGMENTS = 40              # simulate at most this many intervals of work, then scale
SECTION_IDS = ("verdict", "submit-file", "fit-table", "time-to-results", "checkpoint", "whatif",
               "assumptions")

Progress = Callable[[int, int, str], None]


@dataclass
class Distribution:
    """Time-to-results of the chosen request over replications (hours; held runs left out)."""

    values_hours: list[float]
    held_runs: int
    replications: int
    scale: float

    def to_dict(self) -> dict[str, Any]:
        x = self.values_hours
        return {"replications": self.replications, "held_runs": self.held_runs,
                "values": x, "mean": statistics.fmean(x) if x else None,
                "median": statistics.median(x) if x else None,
                "p90": float(np.percentile(x, 90)) if x else None,
                "jobs_per_simulated_job": self.scale}


@dataclass
class WhatIf:
    """The chosen request against one variant: `backfill` (+is_resumable flipped) or `busier`
    (the same request while other users keep more of the shared GPUs busy)."""

    kind: str              # "backfill" | "busier"
    name: str              # short label for the figure and the table
    question: str
    chosen: Evaluated
    variant: Evaluated | None
    source: str            # "recommend" (among its candidates), "simulated here" or "none"
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "question": self.question,
                "chosen": self.chosen.to_dict(),
                "variant": None if self.variant is None else self.variant.to_dict(),
                "source": self.source, "note": self.note}


@dataclass
class Report:
    html: str
    workload: str
    pool: str
    verdict: str
    sections: list[str]
    recommendation: Recommendation
    distribution: Distribution | None = None
    whatifs: list[WhatIf] = field(default_factory=list)
    checkpoint: dict[str, Any] = field(default_factory=dict)

    def whatif(self, kind: str) -> WhatIf | None:
        return next((w for w in self.whatifs if w.kind == kind), None)

    @property
    def exit_code(self) -> int:
        return 0 if self.recommendation.request is not None else 1

    def to_dict(self) -> dict[str, Any]:
        rec = self.recommendation
        return {"workload": self.workload, "pool": self.pool, "verdict": self.verdict,
                "reasons": rec.reasons, "advice": rec.assessment.advice, "sections": self.sections,
                "request": None if rec.request is None else rec.request.to_dict(),
                "expected": rec.expected,
                "time_to_results": None if self.distribution is None else self.distribution.to_dict(),
                "checkpoint": self.checkpoint,
                "whatif": [w.to_dict() for w in self.whatifs]}


# --- the simulations behind the figures -----------------------------------------------------

def rebuild_space(workload: Workload, pool: Pool, a: Assessment) -> tuple[Space, Sizing]:
    """The Space and Sizing `recommend` used (it does not return them; same construction)."""
    usable = [o for o in a.options if o.fits and o.task_hours is not None]
    items = int(a.facts.get("batching", {}).get("items_per_job", 1))
    sizing = size_request(workload, usable, items)
    space = Space(workload=workload, pool=pool, options=a.options, gate=sizing.gate_capability,
                  items_per_job=items, costs=CheckpointCosts.of(workload))
    return space, sizing


def candidate_scenario(space: Space, sizing: Sizing, cand: Candidate, pool_ref: str | Path,
                       background_load: float, catalog: Catalog) -> tuple[Scenario, float]:
    return scenario_for(space, cand, pool_ref, background_load,
                        (sizing.gpus_minimum_memory_mb or 0) / 1024, sizing.request_memory_mb / 1024,
                        sizing.request_cpus, catalog.reference.name)


def simulate_distribution(scenario: Scenario, scale: float, replications: int, seed: int) -> Distribution:
    values, held = [], 0
    for ss in replication_seeds(seed, replications):
        r = run_summary(scenario, ss)
        if r["tasks_held"] == 0 and r["tasks_completed"] == r["tasks"]:
            values.append(float(r["makespan_hours"]) * scale)
        else:
            held += 1
    return Distribution(values_hours=values, held_runs=held, replications=replications, scale=scale)


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
                               replications: int = CHECKPOINT_REPLICATIONS) -> list[plots.SimulatedPoint]:
    """One job alone on one GPU, evicted after exponential times of mean `mtte_hours`, checkpointing
    by exiting every τ. At most CHECKPOINT_SEGMENTS intervals of work are simulated and the wall
    time scaled to `work_hours` (T_w is proportional to the work for whole segments)."""
    out = []
    for tau in intervals_hours:
        sim_work = min(work_hours, CHECKPOINT_SEGMENTS * tau)
        scale = work_hours / sim_work
        scn = Scenario.from_dict({
            "name": f"checkpoint every {tau * 60:.0f} min", "seed": seed, "fair_share": "none",
            "pool": {"name": "one-gpu", "slots": [{"gpu": "A100-SXM4-80GB", "count": 1}]},
            "eviction": {"time_to_eviction": {"dist": "exponential", "mean": mtte_hours}},
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
    return min(pool, key=lambda e: _mean(e.outcome))


def _mean(o: Outcome | None) -> float:
    return math.inf if o is None else o.time_to_results_hours["mean"]


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
    a = rec.assessment
    dist: Distribution | None = None
    whatifs: list[WhatIf] = []
    ckpt: dict[str, Any] = {}
    figs: dict[str, plots.Figure] = {}
    chosen = rec.chosen
    if rec.request is not None and chosen is not None and chosen.outcome is not None:
        space, sizing = rebuild_space(workload, pool, a)
        c = chosen.candidate
        phase(1, f"time-to-results: {plot_replications} replications")
        scn, scale = candidate_scenario(space, sizing, c, pool_ref, background_load, catalog)
        dist = simulate_distribution(scn, scale, plot_replications, seed)
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
                    ckpt["sim_intervals_hours"], seed)
                ckpt["simulated"] = [p.__dict__ for p in points]
            figs["checkpoint"] = plots.checkpoint_curve(
                work_hours=ckpt["work_hours"], mtte_hours=ckpt["mtte_hours"],
                cost_hours=ckpt["cost_hours"], restart_hours=ckpt["restart_hours"],
                chosen_interval_hours=None if ckpt["hypothetical"] else c.checkpoint_interval_hours,
                daly_interval_hours=ckpt["daly_interval_hours"], guidance_hours=ckpt.get("guidance"),
                simulated=points, hypothetical=ckpt["hypothetical"])
        phase(3, "what-if: backfill, busier pool")
        whatifs = [_backfill_whatif(rec, space, sizing, pool, pool_ref, background_load, catalog,
                                    replications, seed)]
        busier = _busier_whatif(rec, space, sizing, pool_ref, background_load, catalog, replications, seed)
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
    sections = _sections(rec, workload, pool, catalog, dist, ckpt, whatifs, figs, replications)
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
                  sections=[s[0] for s in sections], recommendation=rec, distribution=dist,
                  whatifs=whatifs, checkpoint={k: v for k, v in ckpt.items() if k != "plot"})


def write_report(report: Report, path: str | Path) -> Path:
    return atomic_write(path, report.html, mode=0o644)


def _checkpoint_numbers(rec: Recommendation, space: Space, c: Candidate, pool: Pool) -> dict[str, Any]:
    story = rec.checkpoint
    daly = story.get("daly")
    hypothetical = daly is None
    if daly is None:
        mtte = space.mean_time_to_eviction(c.min_capability, True)
        if mtte is None or not any(s.backfill_only for s in pool.slots):
            return {"plot": False, "explanation": story.get("explanation", "")}
        from simulator.theory import daly_interval
        daly = {"mean_time_to_eviction_hours": mtte, "checkpoint_cost_hours": space.costs.cost_hours,
                "restart_hours": space.costs.restart_hours,
                "daly_interval_hours": daly_interval(space.costs.cost_hours, mtte)}
    work = job_work_hours(space, c, c.is_resumable or hypothetical)
    if work <= 0:
        return {"plot": False, "explanation": story.get("explanation", "")}
    tau_d = float(daly["daly_interval_hours"])
    taus = {round(tau_d * f, 4) for f in (0.25, 0.5, 1.0, 2.0, 4.0)}
    if c.checkpoint_interval_hours and not hypothetical:
        taus.add(round(c.checkpoint_interval_hours, 4))
    guidance = pool.limits.get("checkpoint_interval_hours")
    return {
        "plot": True, "hypothetical": hypothetical, "work_hours": work,
        "mtte_hours": float(daly["mean_time_to_eviction_hours"]),
        "cost_hours": float(daly["checkpoint_cost_hours"]), "restart_hours": float(daly["restart_hours"]),
        "daly_interval_hours": tau_d,
        "exit_driven_optimum_hours": plots.exit_driven_optimum(
            work, float(daly["checkpoint_cost_hours"]), float(daly["restart_hours"]),
            float(daly["mean_time_to_eviction_hours"])),
        "chosen_interval_hours": None if hypothetical else c.checkpoint_interval_hours,
        "sim_intervals_hours": sorted(t for t in taus if 0 < t < work),
        "guidance": (float(guidance["min"]), float(guidance["max"]))
        if isinstance(guidance, dict) and guidance.get("min") is not None else None,
        "explanation": story.get("explanation", ""),
    }


def _backfill_whatif(rec: Recommendation, space: Space, sizing: Sizing, pool: Pool,
                     pool_ref: str | Path, load: float, catalog: Catalog, replications: int,
                     seed: int) -> WhatIf:
    chosen = rec.chosen
    assert chosen is not None
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
    scn, scale = candidate_scenario(space, sizing, flipped, pool_ref, load, catalog)
    return what(Evaluated(flipped, evaluate(scn, scale, replications, seed)), "simulated here")


BUSIER_BY = 0.2          # the busier-pool what-if: other users' share of the shared GPUs + 0.2
BUSIEST = 0.9


def _busier_whatif(rec: Recommendation, space: Space, sizing: Sizing, pool_ref: str | Path,
                   load: float, catalog: Catalog, replications: int, seed: int) -> WhatIf | None:
    """The recommended request while other users keep more of the shared GPUs busy."""
    chosen = rec.chosen
    assert chosen is not None
    busier = min(BUSIEST, load + BUSIER_BY)
    if busier <= load:
        return None
    scn, scale = candidate_scenario(space, sizing, chosen.candidate, pool_ref, busier, catalog)
    variant = Evaluated(chosen.candidate, evaluate(scn, scale, replications, seed))
    return WhatIf("busier", f"busier pool ({busier:.0%})",
                  f"on a busier pool, other users keeping {busier:.0%} of the shared GPUs busy instead "
                  f"of {load:.0%}", chosen, variant, "simulated here")


def _bar(label: str, e: Evaluated | None) -> plots.Bar:
    assert e is not None and e.outcome is not None
    t = e.outcome.time_to_results_hours
    return plots.Bar(label, t["mean"], t["ci95_low"], t["ci95_high"], t["p90"], e.chosen and label == "recommended")


# --- sections -------------------------------------------------------------------------------

def _h(x: float | None) -> str:
    return "–" if x is None or not math.isfinite(x) else fmt_hours(x)


def _verdict_section(rec: Recommendation, workload: Workload) -> h.Safe:
    a = rec.assessment
    summary = {
        "htc-able": "runs well as independent jobs on this pool.",
        "htc-able-with-checkpointing": "runs well as independent jobs if each job checkpoints.",
        "not-a-fit": "is not a good fit for this pool as it stands.",
    }.get(rec.verdict, "")
    parts: list[str] = [h.Safe(f'<p class="lead">{h.badge(rec.verdict)} '
                               f'{h.esc(f"{workload.name} on {rec.pool} {summary}")}</p>')]
    if rec.request is not None:
        ttr = rec.expected["time_to_results_hours"]
        r = rec.request
        gpu_sub = ", ".join(x for x in (
            f"capability ≥ {r.gpus_minimum_capability:g}" if r.gpus_minimum_capability else "",
            f"≥ {r.gpus_minimum_memory_mb / 1024:.1f} GB" if r.gpus_minimum_memory_mb else "") if x)
        stats = [
            h.stat("Expected time to results", _h(ttr["mean"]),
                   f"95% CI {_h(ttr['ci95_low'])}–{_h(ttr['ci95_high'])}, p90 {_h(ttr['p90'])}"),
            h.stat("Jobs", f"{rec.expected['jobs']:,}",
                   f"{rec.job.items_per_job:,} task(s) per job" if rec.job else ""),
            h.stat("Per job", f"{r.request_gpus} GPU · {r.request_cpus} CPU",
                   f"{r.request_memory_mb / 1024:.1f} GB memory" + (f"; GPU {gpu_sub}" if gpu_sub else "")),
            h.stat("Checkpoint", "none" if r.checkpoint_interval_minutes is None
                   else f"every {fmt_hours(r.checkpoint_interval_minutes / 60)}",
                   ("backfill allowed" if r.is_resumable else "shared GPUs only")
                   + (f" · {r.job_length} tier" if r.job_length else "")),
        ]
        parts.append(h.Safe('<div class="stats">' + "".join(stats) + "</div>"))
    parts.append(h.tag("h3", "Why"))
    order = ["fail", "checkpoint", "warn", "ok", "info"]
    checks = sorted(a.checks, key=lambda c: order.index(c.status) if c.status in order else 9)
    parts.append(h.check_list((c.status, c.text) for c in checks))
    if rec.request is None and rec.verdict != "not-a-fit":
        parts.append(h.tag("div", "No candidate request finished all its jobs in the simulation; "
                           "no submit file is recommended.", class_="note bad"))
    if a.advice:
        parts.append(h.tag("h3", "What to do instead" if rec.request is None else "What to do"))
        parts.append(h.bullet_list(a.advice, class_="advice"))
    if rec.request is None:
        parts.append(h.tag("div", "No submit file: a workload that is not a fit gets the reasons and "
                           "the alternatives above instead. Change the workload (or the pool) and run "
                           "advisor report again.", class_="note bad"))
    return h.section("verdict", "Verdict", h.join(parts))


def _submit_section(rec: Recommendation, pool: Pool) -> h.Safe:
    from advisor.emit import render_checkpoint_wrapper, render_htcondor

    assert rec.request is not None and rec.job is not None
    r = rec.request
    rows = [("request_gpus", str(r.request_gpus), rec.why.get("request_gpus", "one task per job")),
            ("request_cpus", str(r.request_cpus), rec.why.get("request_cpus", "")),
            ("request_memory", f"{r.request_memory_mb} MB", rec.why.get("request_memory", "")),
            ("request_disk", f"{r.request_disk_mb} MB", rec.why.get("request_disk", "")),
            ("gpus_minimum_capability", "–" if r.gpus_minimum_capability is None
             else f"{r.gpus_minimum_capability:g}", rec.why.get("gpus_minimum_capability", "")),
            ("gpus_minimum_memory", "–" if r.gpus_minimum_memory_mb is None
             else f"{r.gpus_minimum_memory_mb} MB", rec.why.get("gpus_minimum_memory", "")),
            ("job length tier", r.job_length or "–", rec.why.get("job_length", "")),
            ("+is_resumable", str(r.is_resumable).lower(), rec.why.get("is_resumable", "")),
            ("checkpoint interval", "none" if r.checkpoint_interval_minutes is None
             else f"{r.checkpoint_interval_minutes:g} min", rec.checkpoint.get("explanation", ""))]
    text = render_htcondor(r, rec.job, pool)
    name = f"{rec.job.name}.sub"
    parts = [h.table(["submit command", "value", "why"], rows, numeric=(1,)),
             h.code_block(text, label=name, id_="submit-file-text")]
    if r.checkpoints:
        parts.append(h.details("The checkpoint wrapper it runs (checkpoint_wrapper.sh)",
                               h.code_block(render_checkpoint_wrapper(r, rec.job), label="checkpoint wrapper")))
    parts.append(h.tag("p", f"Save it as {name} next to run.sh (what one job runs; "
                       f"`advisor recommend ... -o DIR` writes both), review it with "
                       f"`advisor check {name} --pool {pool.name}`, then condor_submit it.", class_="muted"))
    return h.section("submit-file", "Recommended submit file", h.join(parts),
                     lead="HTCondor submit file for the chosen request; every line's reason is in its comment.")


def _fit_section(rec: Recommendation, workload: Workload, pool: Pool, catalog: Catalog) -> h.Safe:
    a = rec.assessment
    r = rec.request
    chosen = rec.chosen

    def accepted(o: Any) -> str:
        if r is None or chosen is None or not o.fits:
            return "–"
        floor = chosen.candidate.min_capability
        ok = o.capability >= max(floor, r.gpus_minimum_capability or 0) and (
            o.shared or (r.is_resumable and o.backfill))
        return "yes" if ok else "no"

    step: dict[str, tuple[float, str]] = {}
    caption = ("One task's hours: the reference-GPU hours of the workload scaled by a typical training "
               "mix (half compute, half memory bandwidth). Profile the script for a per-GPU prediction.")
    if workload.profile_data is not None:
        from advisor.predict import predict_fit
        report = predict_fit(workload.profile_data, pool, catalog)
        step = {row.gpu: (row.predicted_step_time_s, row.bound) for row in report.rows}
        caption = (f"Predicted from the measured profile ({report.measured_on}); speed-up against "
                   f"{report.reference_gpu}. {report.calibration}")
    headers = ["GPU", "capability", "GB", "shared", "backfill", "fits", "needs GB",
               "speed ×"] + (["step (s)"] if step else []) + ["one task", "bound", "accepted"]
    rows, classes = [], []
    for o in a.options:
        row: list[object] = [o.gpu, f"{o.capability:.1f}", f"{o.gpu_memory_gb:g}", o.shared, o.backfill,
                             "yes" if o.fits else "no", f"{o.needed_memory_gb:.1f}",
                             f"{o.speed:.2f}" if o.speed else "–"]
        if step:
            s = step.get(o.gpu)
            row.append(f"{s[0]:.3g}" if s and math.isfinite(s[0]) else "–")
        row += [_h(o.task_hours) if o.task_hours else "–",
                (step.get(o.gpu, (0.0, o.bound))[1] if step else o.bound).replace("_", " ").replace("-", " "), accepted(o)]
        rows.append(row)
        classes.append(None if o.fits else "nofit")
    notes = [f"{o.gpu}: {n}" for o in a.options for n in o.reasons]
    numeric = (1, 2, 3, 4, 6, 7, 8, 9) if step else (1, 2, 3, 4, 6, 7, 8)
    body = [h.table(headers, rows, caption=caption + " GB: the GPU's usable memory; needs GB: what one "
                    "task needs there; speed: against the reference GPU; accepted: GPUs the recommended "
                    "request can land on.", numeric=numeric, nowrap=tuple(range(len(headers))),
                    row_classes=classes, class_="data compact")]
    if notes:
        body.append(h.details(f"Notes per GPU ({len(notes)})", h.bullet_list(notes)))
    return h.section("fit-table", "One task on each GPU type", h.join(body),
                     lead=f"Every GPU type in {pool.name}: does one task fit, and how fast is it"
                          + (", and which of them the recommended request can land on." if r is not None
                             else "."))


def _ttr_section(rec: Recommendation, dist: Distribution, fig: plots.Figure | None,
                 replications: int) -> h.Safe:
    x = dist.values_hours
    rows = []
    if x:
        rows = [("mean", _h(statistics.fmean(x))), ("median", _h(statistics.median(x))),
                ("90th percentile", _h(float(np.percentile(x, 90)))),
                ("fastest / slowest run", f"{_h(min(x))} / {_h(max(x))}"),
                ("replications", f"{len(x)} of {dist.replications}"
                 + (f" ({dist.held_runs} had jobs held)" if dist.held_runs else ""))]
    chosen = rec.chosen
    assert chosen is not None
    body: list[str] = []
    if fig is not None:
        body.append(h.figure(fig, (
            "Each replication simulates the pool under other users' load and submits "
            + (f"all {rec.expected['jobs']:,} jobs at once" if rec.expected["jobs"] != 1 else "the one job")
            + "; the time is from submission to the last result. "
            + (f"The first {replications} replications are the ones recommend chose by."
               if replications > 1 else "The first replication is the one recommend chose by.")
            + (f" {dist.scale:.3g} jobs are represented by each simulated job (throughput-bound "
               "regime, time scaled)." if dist.scale > 1 else ""))))
    else:
        body.append(h.tag("div", "No replication finished all jobs: jobs were held at the tier limit.",
                          class_="note bad"))
    body.append(h.table(["statistic", "time to results"], rows, numeric=(1,)))
    return h.section("time-to-results", "How long until all results are in", h.join(body),
                     lead=f"The recommended request ({chosen.candidate.label}), simulated "
                          f"{dist.replications} times.")


def _checkpoint_section(rec: Recommendation, ckpt: dict[str, Any], fig: plots.Figure | None) -> h.Safe:
    r = rec.request
    assert r is not None
    body: list[str] = [h.tag("p", ckpt.get("explanation") or rec.checkpoint.get("explanation", ""))]
    if fig is not None:
        if ckpt.get("hypothetical"):
            body.append(h.tag("div", "The recommended request does not checkpoint and runs where nothing "
                              "evicts it. The curve shows what checkpointing would cost and save if the "
                              "job ran as backfill on research groups' GPUs.", class_="note"))
        sim = ckpt.get("simulated") or []
        formula = h.Safe("T<sub>w</sub> = M·e<sup>R/M</sup>·(e<sup>(τ+δ)/M</sup> − 1)·T<sub>s</sub>/τ")
        exit_formula = h.Safe("(T<sub>s</sub>/τ)·M·(e<sup>(R+τ+δ)/M</sup> − 1)")
        numbers = h.esc(
            f" = {ckpt['work_hours']:.3g} h of work (averaged over the GPUs it may use), mean time to "
            f"eviction M = {ckpt['mtte_hours']:g} h, checkpoint δ = {ckpt['cost_hours'] * 3600:.0f} s, "
            f"restart R = {ckpt['restart_hours'] * 3600:.0f} s.")
        squares = h.esc(
            f" Squares: one job alone on one GPU, {CHECKPOINT_REPLICATIONS} replications per interval, "
            "exit-driven checkpoints as the submit file does them, at most "
            f"{CHECKPOINT_SEGMENTS} intervals simulated and scaled to the whole job." if sim else "")
        caption = h.Safe(
            f"Solid: Daly (2006), {formula}; dashed: exit-driven checkpoints, each run restarting from "
            f"the last checkpoint, {exit_formula}. One job of T<sub>s</sub>{numbers}{squares}")
        body.append(h.figure(fig, caption))
        rows = [("mean time to eviction M", f"{ckpt['mtte_hours']:g} h"),
                ("checkpoint cost δ", f"{ckpt['cost_hours'] * 3600:.0f} s"),
                ("restart cost R", f"{ckpt['restart_hours'] * 3600:.0f} s"),
                ("Daly's optimum τ (in-place checkpoints)", _h(ckpt["daly_interval_hours"])),
                ("optimum τ for exit-driven checkpoints", _h(ckpt["exit_driven_optimum_hours"])),
                ("recommended τ", "none" if r.checkpoint_interval_minutes is None
                 else fmt_hours(r.checkpoint_interval_minutes / 60))]
        if ckpt.get("guidance"):
            lo, hi = ckpt["guidance"]
            rows.append(("pool guidance", f"{lo:g}–{hi:g} h"))
        body.append(h.table(["quantity", "value"], rows, numeric=(1,)))
    else:
        body.append(h.tag("p", "Nothing in this pool evicts the GPUs this request may use, so a "
                          "checkpoint only costs time; there is no interval to trade off.", class_="muted"))
    return h.section("checkpoint", "How often to checkpoint", h.join(body))


def _whatif_section(rec: Recommendation, whatifs: list[WhatIf], fig: plots.Figure | None) -> h.Safe:
    body: list[str] = []
    chosen = rec.chosen
    rows: list[list[str]] = []
    for w in whatifs:
        if w.note:
            body.append(h.tag("div", w.note, class_="note"))
        if w.variant is None or w.variant.outcome is None or w.chosen.outcome is None:
            continue
        ma = w.chosen.outcome.time_to_results_hours["mean"]
        mb = w.variant.outcome.time_to_results_hours["mean"]
        if math.isfinite(mb):
            change = (mb - ma) / ma if ma > 0 else 0.0
            how = ("about the same" if abs(change) < 0.005 else
                   f"{abs(change):.0%} {'slower' if change > 0 else 'faster'}")
            text = f"What if the jobs ran {w.question}? Mean time to results {_h(mb)} instead of {_h(ma)} ({how})."
        else:
            text = (f"What if the jobs ran {w.question}? In the simulation some jobs were held at the "
                    "tier limit: that variant does not finish.")
        if w.source == "recommend":
            text += " (From the candidates recommend simulated.)"
        body.append(h.tag("p", text))
        t = w.variant.outcome.time_to_results_hours
        rows.append([f"what if: {w.name}", w.variant.candidate.label, _h(t["mean"]), _h(t["p90"]),
                     f"{w.variant.outcome.goodput_fraction:.0%}", f"{w.variant.outcome.evictions_per_task:.2f}"])
    if rows and chosen is not None and chosen.outcome is not None:
        if fig is not None:
            body.append(h.figure(fig, "Bars: mean time to results; whiskers: 95% confidence "
                                      "interval over replications; orange tick: 90th percentile."))
        t = chosen.outcome.time_to_results_hours
        first = ["recommended", chosen.candidate.label, _h(t["mean"]), _h(t["p90"]),
                 f"{chosen.outcome.goodput_fraction:.0%}", f"{chosen.outcome.evictions_per_task:.2f}"]
        body.append(h.table(["", "request", "mean", "p90", "goodput", "evictions/job"], [first, *rows],
                            numeric=(2, 3, 4, 5), row_classes=["chosen"] + [None] * len(rows)))
    body.append(h.tag("h3", "Every candidate recommend considered"))
    cand_rows: list[list[str]] = []
    classes: list[str | None] = []
    for e in sorted(rec.candidates, key=lambda e: (e.outcome is None, _mean(e.outcome))):
        d = e.to_dict()
        t = d.get("time_to_results_hours") or {}
        cand_rows.append(["▶" if e.chosen else "", str(d["label"]), _h(t.get("mean")), _h(t.get("p90")),
                          f"{d['goodput_fraction']:.0%}" if "goodput_fraction" in d else "–",
                          f"{d['evictions_per_task']:.2f}" if "evictions_per_task" in d else "–",
                          str(d.get("why_not") or "")])
        classes.append("chosen" if e.chosen else None)
    headers = ["", "candidate", "mean", "p90", "goodput", "evictions/job", "note"]
    if not any(r[-1] for r in cand_rows):
        headers, cand_rows = headers[:-1], [r[:-1] for r in cand_rows]
    body.append(h.table(headers, cand_rows, numeric=(2, 3, 4, 5), nowrap=(1, 2, 3), row_classes=classes,
                        caption=f"Objective: {rec.objective} time to results. Within the best "
                                "candidate's noise the simpler request is chosen."))
    return h.section("whatif", "What if", h.join(body))


def _assumptions_section(rec: Recommendation, workload: Workload, pool: Pool,
                         dist: Distribution | None) -> h.Safe:
    items = list(rec.assumed)
    if workload.profile_data is None:
        items.append("GPU speeds: the workload's reference-GPU hours scaled by a typical training mix "
                     "(half compute, half memory bandwidth), a first-order estimate.")
    else:
        from advisor.predict import LIMITS
        items.extend(LIMITS)
    if dist is not None:
        items.append(f"Time-to-results figure: {dist.replications} replications of the chosen request "
                     "(the first ones are those recommend used).")
    if workload.source:
        items.append(f"Workload: {workload.source}")
    if pool.source:
        items.append(f"Pool: {pool.source}")
    return h.section("assumptions", "Assumptions and sources", h.bullet_list(items),
                     lead="What the numbers above rest on. Calibrate eviction rates and runtimes from "
                          "your own job logs with `advisor logs`.")


def _sections(rec: Recommendation, workload: Workload, pool: Pool, catalog: Catalog,
              dist: Distribution | None, ckpt: dict[str, Any], whatifs: list[WhatIf],
              figs: dict[str, plots.Figure], replications: int) -> list[tuple[str, str, h.Safe]]:
    out = [("verdict", "Verdict", _verdict_section(rec, workload))]
    if rec.request is not None:
        out.append(("submit-file", "Submit file", _submit_section(rec, pool)))
    out.append(("fit-table", "GPU fit", _fit_section(rec, workload, pool, catalog)))
    if rec.request is not None and dist is not None:
        out.append(("time-to-results", "Time to results",
                    _ttr_section(rec, dist, figs.get("ttr"), replications)))
        out.append(("checkpoint", "Checkpointing", _checkpoint_section(rec, ckpt, figs.get("checkpoint"))))
        out.append(("whatif", "What if", _whatif_section(rec, whatifs, figs.get("whatif"))))
    out.append(("assumptions", "Assumptions", _assumptions_section(rec, workload, pool, dist)))
    return out


__all__ = ["DEFAULT_PLOT_REPLICATIONS", "SECTION_IDS", "Distribution", "Report", "WhatIf",
           "build_report", "write_report"]
