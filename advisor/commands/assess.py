"""Is a workload HTC-able on a pool? A verdict (htc-able, htc-able-with-checkpointing,
not-a-fit) with reasons that name numbers and rules, and advice.

Examples:
  advisor assess examples/workloads/1_cosmos_pdfs.yaml
  advisor assess profiles/cnn_catdog.json --pool ospool --tasks 50 --json
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table
from rich.text import Text

from advisor.assess import assess
from advisor.commands.common import add_pool_argument, add_workload_arguments, load_target
from advisor.output import CommandResult
from advisor.units import fmt_hours
from simulator.catalog import describe_speed_model

HELP = "the HTC-ability verdict for a workload file or a profile, with reasons"
STYLE = {"htc-able": "bold green", "htc-able-with-checkpointing": "bold yellow", "not-a-fit": "bold red"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_workload_arguments(parser)
    add_pool_argument(parser)


def run(args: argparse.Namespace) -> CommandResult:
    if "," in str(args.pool):   # pools side by side (advisor.recommend.compare)
        from advisor.recommend.compare import run_pools
        return run_pools(args, run, "assess")
    workload, pool, catalog = load_target(args)
    result = assess(workload, pool, catalog)
    data = result.to_dict()
    if workload.notes:
        data["assumed"] = workload.notes

    def render(console: Console) -> None:
        console.print(f"[{STYLE[result.verdict]}]{result.verdict}[/]  "
                      f"{result.workload} on {result.pool}")
        for c in sorted(result.checks, key=lambda c: ["fail", "checkpoint", "warn", "ok", "info"].index(c.status)):
            mark = {"fail": "[red]✗[/]", "checkpoint": "[yellow]⟳[/]", "warn": "[yellow]![/]",
                    "ok": "[green]✓[/]", "info": "[blue]i[/]"}[c.status]
            console.print(f" {mark} {c.text}", highlight=False)
        if result.advice:
            console.print("[bold]What to do[/]")
            for a in result.advice:
                console.print(f"  • {a}", highlight=False)
        table = Table(title="One task on each GPU type", caption=(
            "Task hours from the measured profile via the predictor." if any(
                o.method == "profile" for o in result.options) else
            f"Task hours: reference-GPU hours scaled by a typical training mix ({describe_speed_model()}); "
            "profile the script for a per-GPU prediction."))
        for col in ("GPU", "CC", "memory GB", "shared", "backfill", "fits", "speed", "one task"):
            table.add_column(col, justify="left" if col == "GPU" else "right")
        for o in result.options:
            table.add_row(o.gpu, f"{o.capability:.1f}", f"{o.gpu_memory_gb:g}", str(o.shared),
                          str(o.backfill), "yes" if o.fits else "[red]no[/]", f"{o.speed:.2f}×",
                          fmt_hours(o.task_hours) if o.task_hours else "–")
        console.print(table)
        if workload.notes:
            # as plain Text: neither rich markup nor its highlighter (quadratic on long words)
            console.print(Text(f"assumed: {workload.notes}", style="dim"))

    return CommandResult(data, render)
