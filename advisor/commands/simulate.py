"""Simulate a scenario (pool, workload, background load) and print summary metrics with 95%
confidence intervals over independent replications.

Replications run on Dask: an in-process cluster by default (--workers 1), a cluster of N
local processes (--workers N), or an existing Dask scheduler (--scheduler tcp://host:8786).
Results are the same for any number of workers.

Examples:
  advisor simulate mmc --replications 10          (a shipped scenario, by name)
  advisor simulate daly --seed 7 --json
  advisor simulate my_scenario.yaml
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from rich.console import Console
from rich.table import Table

from advisor.cluster import batch_cluster
from advisor.commands.common import add_run_arguments, check_run_arguments, progress_bar
from advisor.output import CommandResult
from simulator.replicate import replicate
from simulator.results import HEADLINE
from simulator.scenario import Scenario
from simulator.shipped import resolve, shipped_scenario_names

HELP = "run a scenario and print summary metrics with 95% confidence intervals"
EXTRA = ("mean_tasks_waiting", "tasks", "good_gpu_hours", "lost_gpu_hours", "overhead_gpu_hours",
         "window_hours", "cpu_utilization")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="SCENARIO",
                        help="a shipped scenario (" + ", ".join(shipped_scenario_names())
                             + ") or a scenario YAML file")
    add_run_arguments(parser, default_replications=None)


def _fmt(cell: dict[str, Any]) -> tuple[str, str]:
    mean, lo, hi = cell.get("mean"), cell.get("ci95_low"), cell.get("ci95_high")
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–", ""
    ci = "" if lo is None or math.isnan(lo) else f"{lo:.4g} – {hi:.4g}"
    return f"{mean:.4g}", ci


def run(args: argparse.Namespace) -> CommandResult:
    check_run_arguments(args)
    scenario = Scenario.from_yaml(resolve("scenario", args.scenario))
    with batch_cluster(args) as address, progress_bar(f"simulating {scenario.name}") as progress:
        result = replicate(scenario, args.replications, args.seed, workers=args.workers,
                           scheduler=address or args.scheduler, progress=progress)
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
