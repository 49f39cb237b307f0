"""One self-contained HTML page for a consultation: the verdict and its reasons, the recommended
submit file, the per-GPU fit table, the simulated time-to-results, checkpointing against Daly's
curve, a what-if on backfill, and the assumptions. No external assets, no scripts: mail it or
attach it to a ticket.

A workload that is not a fit still gets a page (reasons and what to do instead) and exit code 1.

Examples:
  advisor report examples/workloads/2_many_architectures.yaml -o consult.html
  advisor report profiles/cnn_catdog.json --pool ospool --tasks 50 -o catdog.html
"""

from __future__ import annotations

import argparse
import shlex

from rich.console import Console

from advisor.commands.common import (
    add_pool_argument,
    add_recommend_arguments,
    add_workload_arguments,
    load_target,
    progress_bar,
    replications_type,
)
from advisor.errors import InputError
from advisor.output import CommandResult, check_output_file, output_error
from advisor.recommend import DEFAULT_BACKGROUND_LOAD
from advisor.report import DEFAULT_PLOT_REPLICATIONS, build_report, write_report

HELP = "one self-contained HTML page for a consultation: verdict, submit file, fit table, plots"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_workload_arguments(parser)
    add_pool_argument(parser)
    parser.add_argument("-o", "--output", metavar="FILE.html", required=True,
                        help="where to write the page")
    add_recommend_arguments(parser)
    parser.add_argument("--plot-replications", type=replications_type(),
                        default=DEFAULT_PLOT_REPLICATIONS,
                        help="replications of the chosen request for the time-to-results figure "
                             f"(default {DEFAULT_PLOT_REPLICATIONS})")


def run(args: argparse.Namespace) -> CommandResult:
    if not str(args.output).lower().endswith((".html", ".htm")):
        raise InputError("-o", args.output, "is not an .html file name.",
                         "give a file name ending in .html, e.g. -o consult.html.")
    check_output_file(args.output)     # before the simulations, not after them
    workload, pool, catalog = load_target(args)
    with progress_bar("report") as progress:
        report = build_report(workload, args.pool, catalog=catalog, objective=args.objective,
                              replications=args.replications, plot_replications=args.plot_replications,
                              seed=args.seed, background_load=args.background_load,
                              command=_command_line(args),
                              progress=progress)
    try:
        path = write_report(report, args.output)
    except OSError as exc:
        raise output_error("-o", args.output, exc) from exc
    data = {"output": str(path), **report.to_dict()}

    def render(console: Console) -> None:
        style = {"htc-able": "green", "htc-able-with-checkpointing": "yellow", "not-a-fit": "red"}
        console.print(f"[bold {style.get(report.verdict, 'white')}]{report.verdict}[/]  "
                      f"{report.workload} on {report.pool}")
        rec = report.recommendation
        if rec.request is None:
            for r in rec.reasons:
                console.print(f"  • {r}", highlight=False)
        console.print(f"wrote {path} (sections: {', '.join(report.sections)})", highlight=False)

    return CommandResult(data, render, exit_code=report.exit_code)


def _command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this page (from the parsed arguments, not sys.argv)."""
    parts = ["advisor", "report", str(args.workload_path), "--pool", str(args.pool), "-o", str(args.output)]
    defaults = {"tasks": None, "steps": None, "epochs": None, "objective": "mean", "replications": 4,
                "plot_replications": DEFAULT_PLOT_REPLICATIONS, "seed": 1,
                "background_load": DEFAULT_BACKGROUND_LOAD}
    for name, default in defaults.items():
        value = getattr(args, name, default)
        if value != default:
            parts += ["--" + name.replace("_", "-"), str(value)]
    return shlex.join(parts)
