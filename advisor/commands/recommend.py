"""What to request, how long it will take, how often to checkpoint — and the submit file.

Weighs candidate requests (capability floor, length tier, backfill, checkpoint interval, items
per job, CPU slots) by simulating the pool under other users' load with common random numbers,
chooses by expected time-to-results (or its p90), and writes the files for the chosen one.

Examples:
  advisor recommend profiles/cnn_catdog.json -o out/
  advisor recommend examples/workloads/2_many_architectures.yaml --pool ospool --target slurm
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from advisor.cluster import add_cluster_arguments, batch_cluster
from advisor.commands.common import (
    add_pool_argument,
    add_recommend_arguments,
    add_workload_arguments,
    load_target,
    progress_bar,
)
from advisor.emit import TARGETS
from advisor.output import CommandResult, check_output_dir, output_error, staged_directory
from advisor.recommend import Recommendation, recommend, write_job_files
from advisor.tracking import add_mlflow_argument
from advisor.units import fmt_hours

HELP = "choose the request, tier, backfill and checkpoint interval by simulation; write the submit file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_workload_arguments(parser)
    add_pool_argument(parser)
    parser.add_argument("--target", default="htcondor", choices=TARGETS,
                        help="which file to write (default: htcondor)")
    parser.add_argument("-o", "--output", metavar="DIR", default=None,
                        help="write the submit file (and wrapper, run.sh) into DIR")
    add_recommend_arguments(parser)
    add_mlflow_argument(parser)
    add_cluster_arguments(parser)


def _hours(x: float | None) -> str:
    return "–" if x is None or not math.isfinite(x) else fmt_hours(x)


def write_set(rec: Recommendation, pool: str, output: str, target: str) -> list[Path]:
    """The job's files, all or none: written into a staging directory, then moved into
    `output` with the submit file (which names the others) last."""
    last: list[str] = []
    try:
        with staged_directory(output, last=last) as stage:
            staged = write_job_files(rec, pool, stage, target)
            if staged:
                last.append(staged[0].name)
    except OSError as exc:
        raise output_error("-o", output, exc) from exc
    paths = [Path(output) / p.name for p in staged]
    rec.files = [str(p) for p in paths]
    return paths


def run(args: argparse.Namespace) -> CommandResult:
    if "," in str(args.pool):   # pools side by side (advisor.recommend.compare)
        from advisor.recommend.compare import run_pools
        return run_pools(args, run, "recommend")
    if args.output:
        check_output_dir(args.output)   # before the simulation, not after it
    mlflow_uri = None
    if args.mlflow is not None:
        from advisor import tracking

        mlflow_uri = tracking.check(args.mlflow)
    workload, pool, catalog = load_target(args)
    with batch_cluster(args) as address, progress_bar("simulating candidates") as progress:
        rec = recommend(workload, args.pool, catalog=catalog, objective=args.objective,
                        replications=args.replications, seed=args.seed,
                        background_load=args.background_load, progress=progress,
                        scheduler=address)
    if args.output and rec.request is not None:
        write_set(rec, args.pool, args.output, args.target)
    data = rec.to_dict()
    if mlflow_uri is not None:
        data["mlflow"] = tracking.log_recommendation(mlflow_uri, data, args, rec.files)
    exit_code = 0 if rec.request is not None else 1

    def render(console: Console) -> None:
        style = {"htc-able": "green", "htc-able-with-checkpointing": "yellow", "not-a-fit": "red"}
        console.print(f"[bold {style[rec.verdict]}]{rec.verdict}[/]  {rec.workload} on {rec.pool}")
        if rec.request is None:
            for reason in rec.reasons:
                console.print(f"  • {reason}", highlight=False)
            for a in rec.assessment.advice:
                console.print(f"  → {a}", highlight=False)
            return
        r = rec.request
        ttr = rec.expected["time_to_results_hours"]
        console.print(f"Expected time to results: [bold]{_hours(ttr['mean'])}[/] "
                      f"(95% CI {_hours(ttr['ci95_low'])}–{_hours(ttr['ci95_high'])}, "
                      f"p90 {_hours(ttr['p90'])}) for {rec.expected['jobs']:,} job(s)")
        share = rec.expected.get("pool_gpu_share")
        if share is not None and math.isfinite(share):
            gpu_hours = float(rec.expected.get("gpu_hours") or 0.0)
            amount = f"{gpu_hours:,.0f}" if gpu_hours >= 10 else f"{gpu_hours:.2g}"
            gpus = rec.plan.pool.total_gpus if rec.plan else 0
            console.print(f"Campaign: {amount} GPU-hours; it holds {share:.1%} of the pool's "
                          f"{gpus:,} GPUs on average until its last result, what its fair-share "
                          "priority earns beside the other users assumed below", highlight=False)
        req = Table(title="Recommended request", show_header=True)
        req.add_column("submit command")
        req.add_column("value", justify="right")
        req.add_column("why")
        rows = [("request_cpus", str(r.request_cpus)), ("request_memory", f"{r.request_memory_mb} MB"),
                ("request_disk", f"{r.request_disk_mb} MB"), ("request_gpus", str(r.request_gpus)),
                ("gpus_minimum_capability", "–" if r.gpus_minimum_capability is None else f"{r.gpus_minimum_capability:g}"),
                ("gpus_minimum_memory", "–" if r.gpus_minimum_memory_mb is None else f"{r.gpus_minimum_memory_mb} MB"),
                ("job_length", r.job_length or "–"), ("is_resumable", str(r.is_resumable).lower()),
                ("checkpoint interval", "none" if r.checkpoint_interval_minutes is None
                 else f"{r.checkpoint_interval_minutes:g} min")]
        for name, value in rows:
            key = name.replace(" interval", "")
            req.add_row(name, value, rec.why.get(key, ""))
        console.print(req)
        console.print(rec.checkpoint.get("explanation", ""), highlight=False)
        cands = Table(title=f"Candidates considered (objective: {rec.objective} time-to-results)")
        for col in ("", "candidate", "mean", "p90", "goodput", "evictions/job", "note"):
            cands.add_column(col, justify="left" if col in ("", "candidate", "note") else "right")
        for e in sorted(rec.candidates, key=lambda e: (e.outcome is None,
                        e.outcome.time_to_results_hours[rec.objective] if e.outcome else 0)):
            d = e.to_dict()
            t = d.get("time_to_results_hours") or {}
            cands.add_row("[bold green]▶[/]" if e.chosen else "", d["label"], _hours(t.get("mean")),
                          _hours(t.get("p90")),
                          f"{d['goodput_fraction']:.0%}" if "goodput_fraction" in d else "–",
                          f"{d['evictions_per_task']:.2f}" if "evictions_per_task" in d else "–",
                          d.get("why_not") or "")
        console.print(cands)
        for a in rec.assumed:
            console.print(f"[dim]assumed: {a}[/]", highlight=False)
        for f in rec.files:
            console.print(f"wrote {f}")

    return CommandResult(data, render, exit_code=exit_code)
