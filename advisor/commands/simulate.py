"""Simulate a scenario (pool, workload, background load) and print summary metrics with 95%
confidence intervals over independent replications.

Replications run on Dask: an in-process cluster by default (--workers 1), a cluster of N
local processes (--workers N), or an existing Dask scheduler (--scheduler tcp://host:8786).
Results are the same for any number of workers.

Examples:
  advisor simulate data/scenarios/mmc.yaml --replications 10
  advisor simulate data/scenarios/daly.yaml --seed 7 --json
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from advisor.errors import InputError
from advisor.output import STDERR, CommandResult
from simulator.replicate import replicate
from simulator.results import HEADLINE
from simulator.scenario import Scenario

HELP = "run a scenario and print summary metrics with 95% confidence intervals"
EXTRA = ("mean_tasks_waiting", "tasks", "good_gpu_hours", "lost_gpu_hours", "overhead_gpu_hours",
         "window_hours", "cpu_utilization")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="SCENARIO", help="scenario YAML file")
    parser.add_argument("--replications", "-r", type=int, default=None,
                        help="independent replications (default: the scenario's `replications`)")
    parser.add_argument("--seed", "-s", type=int, default=None,
                        help="root seed (default: the scenario's `seed`)")
    parser.add_argument("--workers", "-w", type=int, default=1,
                        help="Dask workers: 1 = in-process (default), N = local processes, "
                             "0 = no Dask")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="address of an existing Dask scheduler (e.g. tcp://host:8786)")


def _fmt(cell: dict[str, Any]) -> tuple[str, str]:
    mean, lo, hi = cell.get("mean"), cell.get("ci95_low"), cell.get("ci95_high")
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–", ""
    ci = "" if lo is None or math.isnan(lo) else f"{lo:.4g} – {hi:.4g}"
    return f"{mean:.4g}", ci


def run(args: argparse.Namespace) -> CommandResult:
    if args.replications is not None and args.replications < 1:
        raise InputError("--replications", args.replications, "must be at least 1.",
                         "give e.g. --replications 20.")
    if args.workers < 0:
        raise InputError("--workers", args.workers, "must be 0 or more.", "give e.g. --workers 2.")
    if args.seed is not None and args.seed < 0:
        raise InputError("--seed", args.seed, "must be 0 or more.", "give e.g. --seed 1.")
    scenario = Scenario.from_yaml(args.scenario)
    total = args.replications or scenario.replications
    with Progress(TextColumn("simulating {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=STDERR, transient=True) as bar:
        task = bar.add_task(scenario.name, total=total)

        def progress(done: int, _total: int) -> None:
            bar.update(task, completed=done)

        result = replicate(scenario, args.replications, args.seed, workers=args.workers,
                           scheduler=args.scheduler, progress=progress)
    data = {"scenario": scenario.name, "pool": scenario.pool.name, "seed": result.seed,
            "replications": result.replications, "summary": result.summary}

    def render(console: Console) -> None:
        table = Table(title=f"{scenario.name} on {scenario.pool.name}: {result.replications} "
                            f"replications, seed {result.seed}")
        table.add_column("metric")
        table.add_column("mean", justify="right")
        table.add_column("95% CI", justify="right")
        for key in (*HEADLINE, *EXTRA):
            if key in result.summary:
                table.add_row(key, *_fmt(result.summary[key]))
        for gpu, cell in result.summary.get("utilization_by_gpu", {}).items():
            table.add_row(f"utilization {gpu}", *_fmt(cell))
        console.print(table)

    return CommandResult(data=data, render=render)
