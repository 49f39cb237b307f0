"""Read HTCondor job event logs (the file of `log =` in a submit file): what the jobs really
used against what they requested, their runs, evictions, holds (with the reason code named),
aborts, disconnections and exit codes, and what to request next time. With --emit-calibration,
write the measured eviction rate (with its exact confidence interval) and run-time
distribution as a scenario fragment the simulator reads. With --slots, snapshots of the pool's
slots (`condor_status -json` or `-long`) give the owners' busy fraction of their own GPUs
(`owner_busy_fraction`, advisor/logs/slots.py), with or without event logs.

A log that is truncated, corrupt or not a log at all: the report of what was read before the
fault is still printed (JSON: "partial": true, "errors": [...]) and the exit code is 2.

Examples:
  advisor logs job.log
  advisor logs logs/*.log --json
  advisor logs job.log --headroom 0.3 --emit-calibration calibration.yaml
  advisor logs job.log --slots monday.json friday.long --emit-calibration calibration.yaml
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from advisor.commands.common import number
from advisor.errors import InputError
from advisor.logs import analyze_logs, write_fragment
from advisor.output import STDERR, CommandResult

HELP = "HTCondor job event logs → usage vs request, evictions, holds, right-sized requests"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logfiles", nargs="*", metavar="LOGFILE",
                        help="job event log(s), the file named by `log =` in the submit file; "
                             "or Slurm's accounting saved from `sacct --parsable2`/`--json` "
                             "or `scontrol show job`")
    parser.add_argument("--sacct", metavar="JOBID[,JOBID...]", default=None,
                        help="Slurm: read these jobs' accounting with sacct on this cluster")
    parser.add_argument("--headroom", type=number(example="0.2"), default=0.2, metavar="FRACTION",
                        help="margin above the measured peak for the recommended requests "
                             "(default 0.2 = 20%%)")
    parser.add_argument("--emit-calibration", metavar="PATH",
                        help="write the eviction rate and run-time distribution as a scenario "
                             "fragment (YAML) for `advisor simulate`")
    parser.add_argument("--slots", nargs="+", action="extend", metavar="FILE", default=None,
                        help="snapshots of the pool's slots (`condor_status -json` or `-long` "
                             "output): the owners' busy fraction of their own GPUs "
                             "(owner_busy_fraction); put event logs before --slots")
    parser.add_argument("--rows", type=number(integer=True, minimum=0, example="30"), default=30,
                        metavar="N",
                        help="jobs shown in the per-job table (default 30; --json has them all)")


def run(args: argparse.Namespace) -> CommandResult:
    from advisor.logs.slurm import analyze_slurm, looks_like_slurm

    slurm = [p for p in args.logfiles if looks_like_slurm(p)]
    slots = None
    if args.slots:
        from advisor.logs import slots as slots_mod

        if args.sacct or slurm:
            raise InputError("--slots", " ".join(args.slots), "are HTCondor slot snapshots; "
                             "Slurm accounting was given too.", "give them in separate runs.")
        slots = slots_mod.calibrate_slots(args.slots)
        if not args.logfiles:
            return _slots_only(args, slots)
    if args.sacct or slurm:
        if len(slurm) < len(args.logfiles):
            raise InputError("LOGFILE", next(p for p in args.logfiles if p not in slurm),
                             "is not Slurm accounting output, unlike the other inputs.",
                             "give HTCondor event logs and Slurm accounting in separate runs.")
        report = analyze_slurm(slurm, (args.sacct or "").split(",") if args.sacct else (),
                               headroom=args.headroom)
    else:
        report = analyze_logs(args.logfiles, headroom=args.headroom)
    data = report.to_dict()
    for err in report.errors:
        STDERR.print(f"error: {err['log']}: {err['message']}", style="red", highlight=False,
                     markup=False)
    if args.emit_calibration:
        if report.partial:
            STDERR.print(f"error: {args.emit_calibration} not written: a log could not be read "
                         "to its end (fix or leave out that log).", style="red",
                         highlight=False, markup=False)
            data["calibration"]["written"] = None
        else:
            try:
                path = (write_fragment(report.calibration, args.emit_calibration) if slots is None
                        else slots_mod.write_fragment(slots, args.emit_calibration,
                                                      report.calibration))
            except OSError as exc:
                raise InputError("--emit-calibration", args.emit_calibration,
                                 f"cannot be written ({exc.strerror or exc}).",
                                 "give a path in a directory you can write to.") from exc
            data["calibration"]["written"] = str(path)
    rows = args.rows
    warnings = [f"{lg.path}: {w}" for lg in report.logs for w in getattr(lg, "warnings", [])]
    if slots is not None:
        data["slots"] = slots.to_dict()
        data["slots"]["written"] = data["calibration"].get("written")
        warnings += slots.warnings
    data["warnings"] = warnings
    return CommandResult(data, lambda console: render(console, data, rows),
                         exit_code=2 if report.partial else 0, warnings=warnings)


def _slots_only(args: argparse.Namespace, slots: Any) -> CommandResult:
    """--slots without event logs: the owners' busy fraction alone."""
    from advisor.logs import SCHEMA

    data: dict[str, Any] = {"schema": SCHEMA, "partial": False, "errors": [],
                            "slots": slots.to_dict(), "warnings": slots.warnings}
    data["slots"]["written"] = None
    if args.emit_calibration:
        from advisor.logs.slots import write_fragment as write_slots

        try:
            data["slots"]["written"] = str(write_slots(slots, args.emit_calibration))
        except OSError as exc:
            raise InputError("--emit-calibration", args.emit_calibration,
                             f"cannot be written ({exc.strerror or exc}).",
                             "give a path in a directory you can write to.") from exc

    def show(console: Console) -> None:
        console.print(escape(slots.describe()), highlight=False)
        if data["slots"]["written"]:
            console.print(f"Scenario fragment written to {escape(data['slots']['written'])}")
    return CommandResult(data, show, exit_code=0, warnings=slots.warnings)


def _v(x: Any, digits: int = 0) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and not x.is_integer():
        return f"{x:.{digits}f}" if digits else f"{x:.2f}" if abs(x) < 10 else f"{x:.0f}"
    return f"{int(x)}" if isinstance(x, (int, float)) else str(x)


def _triple(res: dict[str, Any]) -> str:
    return f"{_v(res['requested'])} / {_v(res['allocated'])} / {_v(res['used'])}"


def render(console: Console, data: dict[str, Any], rows: int = 30) -> None:
    """Rich tables for people: jobs, totals, holds, usage, recommendation, calibration."""
    logs = data["logs"]
    states = ", ".join(f"{n} {s}" for s, n in sorted(data["states"].items()))
    console.print(f"[bold]{len(logs)} log(s), {sum(lg['events'] for lg in logs)} events, "
                  f"{data['jobs_total']} jobs[/] ({escape(states) or 'none'})")
    for lg in logs:
        console.print(f"  {escape(lg['path'])}: {lg['events']} events, {lg['jobs']} jobs, dates "
                      f"{lg['date_format']}" + (f", spans {lg['span_hours']:.2f} h"
                                                 if lg["span_hours"] is not None else ""),
                      highlight=False)
    _jobs_table(console, data, rows)
    _totals_table(console, data)
    _holds_table(console, data)
    _usage_table(console, data)
    _recommendation(console, data)
    _calibration(console, data)
    if "slots" in data:
        console.print(escape(data["slots"]["summary"]), highlight=False)
    for err in data["errors"]:
        console.print(f"[bold red]error:[/] {escape(err['log'])}: {escape(err['message'])}")
    if data["partial"]:
        console.print("[red]partial report: it covers only what was read before the fault.[/]")


def _jobs_table(console: Console, data: dict[str, Any], rows: int) -> None:
    jobs = data["jobs"]
    if not jobs or rows == 0:
        return
    cap = (f"{len(jobs) - rows} more jobs not shown (--rows N, or --json for all)"
           if len(jobs) > rows else "req / alloc / used; memory and disk used = peak, CPUs and "
           "GPUs used = average busy")
    t = Table(title="Jobs", caption=cap)
    for col in ("job", "state", "runs", "evict", "holds", "exit", "wall h", "good h",
                "CPUs", "memory MB", "disk KB", "GPUs", "GPU mem MB"):
        t.add_column(col, justify="left" if col in ("job", "state", "holds") else "right")
    for j in jobs[:rows]:
        exit_text = (f"sig {j['exit_signal']}" if j["exit_signal"] is not None
                     else _v(j["exit_code"]))
        holds = ",".join(str(h["code"]) for h in j["holds"]) or "-"
        mem = j["memory_mb"]
        mem_text = _triple(mem)
        if mem["used"] is not None and mem["requested"] and mem["used"] > mem["requested"]:
            mem_text = f"[red]{mem_text}[/]"
        gpu = j["gpus"]
        gpu_text = f"{_v(gpu['requested'])} / {_v(gpu['allocated'])} / {_v(gpu['used'], 2)}"
        if gpu["utilization"] is not None and gpu["utilization"] < 0.5:
            gpu_text = f"[yellow]{gpu_text}[/]"
        t.add_row(j["job"], j["state"], str(j["executions"]), str(j["evictions"]), holds,
                  exit_text, _v(j["wall_hours"], 2), _v(j["good_hours"], 2),
                  f"{_v(j['cpus']['requested'])} / {_v(j['cpus']['allocated'])} / "
                  f"{_v(j['cpus']['used'], 2)}",
                  mem_text, _triple(j["disk_kb"]), gpu_text, _v(j["gpus_memory_mb"]["used"]))
    console.print(t)


def _totals_table(console: Console, data: dict[str, Any]) -> None:
    t = Table(title="Across all jobs", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    gp = data["goodput_fraction"]
    for name, value in (
        ("completed", data["completed"]),
        ("runs (executions)", data["executions"]),
        ("evictions (by the pool)", f"{data['evictions']} ({data['preemptions']})"),
        ("holds (jobs held)", f"{len(data['holds'])} ({data['held_jobs']})"),
        ("removed (aborted)", data["aborted"]),
        ("disconnections / reconnected / failed",
         f"{data['disconnections']} / {data['reconnections']} / {data['reconnect_failures']}"),
        ("shadow exceptions", data["shadow_exceptions"]),
        ("exit codes", ", ".join(f"{c}: {n}" for c, n in data["exit_codes"].items()) or "-"),
        ("wall time / good time (h)", f"{data['wall_hours']:.2f} / {data['good_hours']:.2f}"),
        ("goodput", "-" if gp is None else f"{gp:.0%}"),
    ):
        t.add_row(name, str(value))
    console.print(t)


def _holds_table(console: Console, data: dict[str, Any]) -> None:
    if not data["hold_codes"]:
        return
    t = Table(title="Holds")
    for col in ("code", "reason", "count", "example"):
        t.add_column(col)
    for h in data["hold_codes"]:
        t.add_row(_v(h["code"]), escape(h["reason_name"]), str(h["count"]),
                  escape((h["example"] or "")[:90]))
    console.print(t)


def _usage_table(console: Console, data: dict[str, Any]) -> None:
    t = Table(title="Usage across jobs", caption="used: peak for memory/disk, average for CPUs/GPUs")
    for col in ("resource", "requested (max)", "used p50", "used p95", "used max", "jobs"):
        t.add_column(col, justify="left" if col == "resource" else "right")
    for name, label in (("cpus", "CPUs"), ("memory_mb", "memory MB"), ("disk_kb", "disk KB"),
                        ("gpus", "GPUs"), ("gpus_memory_mb", "GPU memory MB")):
        u = data["usage"][name]
        used = u["used"]
        if used["n"] == 0 and u["requested"]["n"] == 0:
            continue
        t.add_row(label, _v(u["requested"]["max"]), _v(used["p50"], 2), _v(used["p95"], 2),
                  _v(used["max"], 2), str(used["n"]))
    console.print(t)


def _recommendation(console: Console, data: dict[str, Any]) -> None:
    rec = data["recommendation"]
    lines = "\n".join(rec["submit_lines"]) or "(not enough data for a recommendation)"
    console.print(Panel(escape(lines), title="Request next time",
                        subtitle=f"headroom {rec['headroom']:.0%}",
                        expand=False))
    colors = {"error": "red", "warning": "yellow", "info": "cyan"}
    for f in rec["findings"]:
        c = colors.get(f["severity"], "white")
        console.print(f"[{c}]{f['severity']}[/] [bold]{f['kind']}[/]: {escape(f['message'])}")


def _calibration(console: Console, data: dict[str, Any]) -> None:
    cal = data["calibration"]
    pct = f"{cal['confidence']:.0%}"
    if cal["rate_ci"] is None:
        console.print("Calibration: no running time in the logs.")
    else:
        lo, hi = cal["rate_ci"]
        mlo, mhi = cal["mean_time_to_eviction_ci"]
        mean = cal["mean_time_to_eviction_hours"]
        console.print(
            f"Calibration: {cal['evictions']} evictions by the pool in "
            f"{cal['exposure_hours']:.2f} running hours: {cal['rate_per_hour']:.4g} per hour "
            f"({pct} CI {lo:.4g}-{hi:.4g}); mean time to eviction "
            f"{'none observed' if mean is None else f'{mean:.3g} h'} ({pct} CI {mlo:.3g}-"
            f"{'inf' if mhi is None else f'{mhi:.3g}'} h).", highlight=False)
    w = cal["work_hours"]
    if w["n"]:
        console.print(f"Run time ({escape(cal['work_basis'])}): n = {w['n']}, mean "
                      f"{w['mean']:.3g} h, p50 {w['p50']:.3g} h, p90 {w['p90']:.3g} h, max "
                      f"{w['max']:.3g} h.", highlight=False)
    if cal.get("written"):
        console.print(f"Scenario fragment written to {escape(cal['written'])}")
