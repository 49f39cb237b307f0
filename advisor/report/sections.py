"""The sections of the consultation page, each rendered from the recommendation and the extra
simulations (`advisor.report.build_report` gathers them; `advisor.report.html` is the markup)."""

from __future__ import annotations

import math
import statistics
from typing import Any

import numpy as np

from advisor.recommend import Recommendation
from advisor.report import html as h
from advisor.report import plots
from advisor.report.model import (
    CHECKPOINT_REPLICATIONS,
    CHECKPOINT_SEGMENTS,
    TimeToResults,
    WhatIf,
    outcome_mean,
)
from advisor.units import fmt_hours
from advisor.workload import Workload
from simulator.catalog import Catalog, describe_speed_model
from simulator.pool import Pool


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
            h.stat("GPU-hours", f"{rec.expected.get('gpu_hours', 0):,.0f}", _share_text(rec.expected)),
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
               f"mix ({describe_speed_model()}). Profile the script for a per-GPU prediction.")
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


def _ttr_section(rec: Recommendation, dist: TimeToResults, fig: plots.Figure | None,
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


def _share_text(expected: dict[str, Any]) -> str:
    share = expected.get("pool_gpu_share")
    if share is None or not math.isfinite(share):
        return "the campaign's total"
    return f"the campaign's total; it held {share:.1%} of the pool's GPUs on average"


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
        curve = [row for row in rec.checkpoint.get("interval_curve") or [] if row["interval_minutes"]]
        formula = h.Safe("T<sub>w</sub> = M·e<sup>R/M</sup>·(e<sup>(τ+δ)/M</sup> − 1)·T<sub>s</sub>/τ")
        exit_formula = h.Safe("Σ<sub>segments</sub> (1 − e<sup>−a/M</sup>)·(M + D)·e<sup>b/M</sup>, "
                              "a = g + R + τ + δ (τ + δ for the first), b = R + τ + δ")
        numbers = h.esc(
            f" = {ckpt['work_hours']:.3g} h of work (averaged over the GPUs it may use), mean time to "
            f"eviction M = {ckpt['mtte_hours']:g} h, checkpoint δ = {ckpt['cost_hours'] * 3600:.0f} s, "
            f"restart R = {ckpt['restart_hours'] * 3600:.0f} s, in-place restart gap "
            f"g = {ckpt['gap_hours'] * 3600:.1f} s, restart delay after an eviction "
            f"D = {ckpt['delay_hours'] * 3600:.0f} s.")
        squares = h.esc(
            f" Squares: one job alone on one GPU, {CHECKPOINT_REPLICATIONS} replications per interval, "
            "exit-85 checkpoints as the submit file does them, at most "
            f"{CHECKPOINT_SEGMENTS} intervals simulated and scaled to the whole job." if sim else "")
        caption = h.Safe(
            f"Solid: Daly (2006), {formula}; dashed: exit-85 checkpoints, each exit restarting in "
            f"place on the same GPU, each eviction from the last checkpoint elsewhere, {exit_formula}. "
            f"One job of T<sub>s</sub>{numbers}{squares}"
            + (" Right: the campaign's time to results simulated for the recommended request at "
               "each interval (mean and 95% CI, common random numbers)." if len(curve) > 1 else ""))
        body.append(h.figure(fig, caption))
        rows = [("mean time to eviction M", f"{ckpt['mtte_hours']:g} h"),
                ("checkpoint cost δ", f"{ckpt['cost_hours'] * 3600:.0f} s"),
                ("restart cost R", f"{ckpt['restart_hours'] * 3600:.0f} s"),
                ("Daly's optimum τ (in-place checkpoints)", _h(ckpt["daly_interval_hours"])),
                ("optimum τ for exit-85 checkpoints (in-place restarts)", _h(ckpt["in_place_optimum_hours"])),
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
    for e in sorted(rec.candidates, key=lambda e: (e.outcome is None, outcome_mean(e.outcome))):
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
                         dist: TimeToResults | None) -> h.Safe:
    items = list(rec.assumed)
    if workload.profile_data is None:
        items.append("GPU speeds: the workload's reference-GPU hours scaled by a typical training mix "
                     f"({describe_speed_model()}), a first-order estimate.")
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


def render_sections(rec: Recommendation, workload: Workload, pool: Pool, catalog: Catalog,
              dist: TimeToResults | None, ckpt: dict[str, Any], whatifs: list[WhatIf],
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
