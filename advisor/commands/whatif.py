"""Compare variants of a scenario side by side: each --vary is one variant, simulated with the
same random numbers as the baseline (common random numbers), on Dask.

Keys are the scenario's dotted keys; lists are addressed by name: a GPU slot class by GPU name,
alias, unique prefix or label (`pool.slots.H100.count`, `pool.slots.L40S@research-groups.count`;
the shared class is meant when a GPU has both), a tier by name (`pool.tiers.long.max_hours`), a
background entry by name (or all of them: `background.arrival.mean`). Values: `=+N`/`=-N`
add, `=*F` multiply (`*` on a distribution's `mean` scales any distribution), anything else
replaces. Several changes in one variant: separate them with `;`.

Differences are paired: per replication variant − baseline, mean with a Student-t interval (95 percent);
`*` marks a paired interval that excludes zero.

--background-trace replaces the scenario's background with load derived from a GPU-cluster
trace (Alibaba's openb pod list, or a generic CSV: submit_s,start_s,end_s,gpus[,gpu_type]) and
prints the trace's own utilization next to the utilization of the trace replayed on a pool made
from its node list (--nodes; found beside the pod list when named *node_list*.csv).

Examples:
  advisor whatif chtc_catdog --vary pool.slots.H100.count=+16 \\
      --vary background.arrival.mean=*0.5 --replications 10
  advisor whatif mmc --vary "pool.slots.A100.count=+2" --workers 0 --json
  advisor whatif chtc_catdog --background-trace PODS.csv --nodes NODES.csv
  advisor whatif my_scenario.yaml --vary workload.tasks=*2
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from advisor.cluster import batch_cluster
from advisor.commands.common import add_run_arguments, check_run_arguments, progress_bar
from advisor.errors import InputError
from advisor.output import CommandResult
from advisor.tracking import add_mlflow_argument
from advisor.whatif import WhatIf, build_variants, compare
from simulator.scenario import Scenario
from simulator.shipped import resolve, shipped_scenario_names

HELP = "compare variants of a scenario side by side (common random numbers, paired differences)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="SCENARIO",
                        help="a shipped scenario (" + ", ".join(shipped_scenario_names())
                             + ") or a scenario YAML file")
    parser.add_argument("--pool", default=None, metavar="NAME|PATH",
                        help="run the scenario on this pool instead of its own (chtc, ospool, "
                             "or a pool YAML file)")
    parser.add_argument("--vary", action="append", default=[], metavar="KEY=VALUE[;KEY=VALUE]",
                        help="one variant (repeat for more): e.g. pool.slots.H100.count=+16")
    add_run_arguments(parser, default_replications=None)
    parser.add_argument("--background-trace", default=None, metavar="PODS.csv",
                        help="replace the background with load derived from a GPU-cluster trace")
    parser.add_argument("--nodes", default=None, metavar="NODES.csv",
                        help="the trace's node list (for its utilization and the replay pool)")
    parser.add_argument("--fractional", choices=("weight", "whole"), default="weight",
                        help="trace jobs sharing a GPU: weight = that fraction of a GPU "
                             "(GPU-seconds kept, default), whole = a GPU each")
    add_mlflow_argument(parser)


def _check(args: argparse.Namespace) -> None:
    check_run_arguments(args)
    if not args.vary and not args.background_trace:
        raise InputError("--vary", None, "is missing: nothing to compare.",
                         "give at least one --vary KEY=VALUE (or --background-trace PODS.csv).")
    if args.nodes and not args.background_trace:
        raise InputError("--nodes", args.nodes, "needs --background-trace.",
                         "give the pod list with --background-trace PODS.csv.")


def run(args: argparse.Namespace) -> CommandResult:
    _check(args)
    with batch_cluster(args) as address:
        if address is not None:
            args.scheduler = address      # the batch cluster's scheduler runs every simulation
        return _run(args)


def _run(args: argparse.Namespace) -> CommandResult:
    mlflow_uri = None
    if args.mlflow is not None:
        from advisor import tracking

        mlflow_uri = tracking.check(args.mlflow)
    scenario = Scenario.from_yaml(resolve("scenario", args.scenario))
    if args.pool:
        d = scenario.to_dict()
        d["pool"] = args.pool
        scenario = Scenario.from_dict(d, source=f"{args.scenario} on --pool {args.pool}")
    data: dict[str, Any] = {}
    trace_report = None
    warnings: list[str] = []
    if args.background_trace:
        from advisor.traces import load_trace, replay_comparison, scenario_with_trace_background

        nodes = args.nodes or _nodes_beside(args.background_trace)
        trace = load_trace(args.background_trace, nodes)
        scenario, derived = scenario_with_trace_background(scenario, trace,
                                                           fractional=args.fractional)
        warnings.extend(derived.notes)
        if trace.nodes is not None:
            with progress_bar("replaying the trace") as progress:
                trace_report = replay_comparison(
                    trace, fractional=args.fractional, replications=args.replications or 5,
                    seed=args.seed if args.seed is not None else 1,
                    workers=args.workers, scheduler=args.scheduler,
                    progress=progress)
            data["trace"] = trace_report.to_dict()
        else:
            warnings.append("no node list: the trace's own utilization cannot be computed "
                            "(give --nodes NODES.csv)")
        data["background_trace"] = derived.to_dict()
    variants = build_variants(scenario, args.vary)
    with progress_bar("simulating variants × replications") as progress:
        result = compare(scenario, variants, args.replications, args.seed, workers=args.workers,
                         scheduler=args.scheduler, progress=progress)
    data = {**result.to_dict(), **data}
    if mlflow_uri is not None:
        data["mlflow"] = tracking.log_whatif(mlflow_uri, data, args)

    def render(console: Console) -> None:
        if trace_report is not None:
            console.print(trace_report.table())
        console.print(table(result))

    return CommandResult(data=data, render=render, warnings=warnings)


def _nodes_beside(pods: str) -> str | None:
    hits = sorted(Path(pods).parent.glob("*node_list*.csv"))
    return str(hits[0]) if hits else None


def _num(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}g}"


def _cell(cell: dict[str, Any]) -> str:
    mean = cell.get("mean")
    text = _num(mean)
    lo, hi = cell.get("ci95_low"), cell.get("ci95_high")
    if lo is not None and not (isinstance(lo, float) and math.isnan(lo)):
        text += f"\n[{_num(lo)}, {_num(hi)}]"
    return text


def _diff(d: dict[str, Any]) -> str:
    rel = d.get("relative")
    mean = d.get("mean")
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "Δ –"
    text = f"Δ {rel * 100:+.1f}%" if rel is not None else f"Δ {mean:+.3g}"
    if d.get("significant"):
        text += " *"
    if d.get("ci_overlap") is False:
        text += "†"
    return text


def table(result: WhatIf) -> Table:
    t = Table(title=f"what if: {result.scenario} on {result.pool}, {result.replications} "
                    f"replications, seed {result.seed} (common random numbers)",
              caption="mean [95% CI]; Δ: paired difference vs baseline as % of the baseline; "
                      "* paired 95% CI excludes 0; † the two variants' own CIs do not overlap")
    t.add_column("variant", overflow="fold", min_width=18)
    short = {"makespan_hours": "makespan h", "mean_wait_hours": "mean wait h",
             "mean_turnaround_hours": "mean turnaround h", "p90_turnaround_hours": "p90 turnaround h",
             "evictions_per_task": "evictions/task", "goodput_fraction": "goodput",
             "pool_utilization": "utilization"}
    for m in result.metrics:
        t.add_column(short.get(m, m), justify="right")
    base = result.baseline
    t.add_row("baseline", *(_cell(base.summary.get(m, {})) for m in result.metrics))
    for v in result.variants:
        cells = [f"{_cell(v.summary.get(m, {}))}\n{_diff(v.difference.get(m, {}))}"
                 for m in result.metrics]
        t.add_row(v.name, *cells)
    return t
