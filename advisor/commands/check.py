"""Review an HTCondor submit file against a pool: misspelled commands and attributes, requests
no slot satisfies (clause by clause, offline), wrong units, long jobs without checkpointing,
secrets, legacy lines. Each finding: severity, line, command, why, and the fix.

Exit code 0 when nothing is an error, 1 when errors were found, 2 when the file cannot be read.

Examples: advisor check job.sub; advisor check job.sub --pool ospool --json
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table
from rich.text import Text

from advisor.check import check_file
from advisor.commands.common import add_pool_argument
from advisor.output import CommandResult

HELP = "review an existing submit file against the pool and its rules"

STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submitfile", metavar="SUBMITFILE", help="the HTCondor submit file to review")
    add_pool_argument(parser)


def run(args: argparse.Namespace) -> CommandResult:
    report = check_file(args.submitfile, args.pool)
    data = report.to_dict()

    def render(console: Console) -> None:
        counts = data["summary"]
        title = (f"{data['file']} against pool {data['pool']}: {counts['error']} errors, "
                 f"{counts['warning']} warnings, {counts['info']} notes")
        if data["findings"]:
            table = Table(title=title, show_lines=True)
            for col in ("severity", "line", "command", "why", "fix"):
                table.add_column(col, overflow="fold")
            for f in data["findings"]:
                table.add_row(Text(f["severity"], style=STYLE[f["severity"]]),
                              "" if f["line"] is None else str(f["line"]), f["command"],
                              f["message"], f["fix"])
            console.print(table)
        else:
            console.print(f"{title}: nothing to report.")
        analysis = data["analysis"]
        if analysis.get("clauses"):
            t = Table(title=(f"Matching (offline, like condor_q -better-analyze): "
                             f"{analysis['matching_gpus']} of {analysis['pool_gpus']} GPUs match"),
                      caption=analysis.get("model"))
            for col in ("line", "clause", "GPUs excluded", "slot classes excluded"):
                t.add_column(col, overflow="fold")
            for c in analysis["clauses"]:
                t.add_row("" if c["line"] is None else str(c["line"]), c["clause"],
                          str(c["excludes_gpus"]), ", ".join(c["excludes_slot_classes"]) or "-")
            console.print(t)
        elif analysis.get("note"):
            console.print(analysis["note"])

    return CommandResult(data, render, exit_code=report.exit_code)
