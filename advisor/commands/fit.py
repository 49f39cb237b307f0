"""Predict a profiled workload on every GPU type of a pool: does it fit in memory, how long is a
step, the speed-up over the catalog's reference GPU, how many such GPUs there are (shared and
backfill-only), what bounds the step, and how many CPUs would keep the GPU fed.

bound: compute | memory_bandwidth | overhead (kernel launches) | input (the data loader) |
does_not_fit. A GPU that cannot run the workload as profiled (bf16 below 8.0, FP8 below 8.9,
torch.compile below 7.0, or a torch build without the GPU's architecture) is marked, with the
reason and, for a build, which build would run there. The model and its documented defaults
are in advisor/predict/ (roofline.py, memory.py, gates.py, input_pipeline.py, calibrate.py);
its measured accuracy: python benchmarks/predictor_accuracy.py.

Examples: advisor fit profiles/resnet.json; advisor fit p.json --pool ospool --json
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from advisor.commands.common import add_pool_argument
from advisor.output import CommandResult
from advisor.predict import FitReport, load_profile_file, predict_fit
from simulator.catalog import load_catalog
from simulator.pool import load_pool

HELP = "per GPU type in the pool: fits?, predicted step time, speed-up, what bounds it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("profile", metavar="PROFILE", help="a WorkloadProfile JSON (from `advisor profile`)")
    add_pool_argument(parser)


def _fmt_time(s: float) -> str:
    return f"{s * 1e3:.3g} ms" if s < 1 else f"{s:.3g} s"


def render_report(report: FitReport, console: Console) -> None:
    table = Table(title=f"Predicted fit and speed on pool {report.pool} "
                        f"(reference: {report.reference_gpu}, {_fmt_time(report.reference_step_time_s)}/step)")
    for col in ("GPU", "CC", "GB usable", "count (shared+backfill)", "needs GB", "fits", "runs",
                "step", "GPU kernels", "speed-up", "bound", "CPUs to feed"):
        table.add_column(col, justify="left" if col in ("GPU", "bound") else "right")
    for r in report.rows:
        style = None if (r.fits and r.runnable) else "dim"
        table.add_row(r.gpu, f"{r.capability:.1f}", f"{r.memory_gb:g}",
                      f"{r.count} ({r.shared_count}+{r.backfill_count})", f"{r.predicted_memory_gb:.1f}",
                      "yes" if r.fits else "[red]no[/]", "yes" if r.runnable else "[red]no[/]",
                      _fmt_time(r.predicted_step_time_s), _fmt_time(r.kernel_time_s),
                      f"{r.speedup:.2f}×", r.bound,
                      str(r.cpus_to_feed), style=style)
    console.print(table)
    for r in report.rows:
        if not r.runnable:
            blockers = [x for x in r.reasons if "needs capability" in x or "kernels for sm_" in x
                        or "which needs" in x]
            console.print(f"[bold]{r.gpu}[/] cannot run as profiled: " + "; ".join(blockers), highlight=False)
    for r in report.rows:
        if not r.fits:
            need = next((x for x in r.reasons if x.startswith("needs ")), "")
            console.print(f"[bold]{r.gpu}[/] does not fit: {need}", highlight=False)
    starved = [r for r in report.rows if r.bound == "input"]
    if starved:
        most = max(r.cpus_to_feed for r in starved)
        console.print(f"Input-bound on {', '.join(r.gpu for r in starved)}: the data loader delivers a "
                      f"step every {_fmt_time(starved[0].input_time_s)}; up to {most} CPUs (loader "
                      "workers + main process) would keep these GPUs fed.", highlight=False)
    console.print(f"Measured on {report.measured_on}; {report.calibration}.", highlight=False)
    console.print(f"Input pipeline: {report.input_basis}.", highlight=False)
    for a in report.assumptions[1:]:
        console.print(f"Assumed: {a}", highlight=False)
    console.print("[bold]Limits of the prediction:[/]")
    for line in report.limits:
        console.print(f"  • {line}", highlight=False)


def run(args: argparse.Namespace) -> CommandResult:
    profile = load_profile_file(args.profile)
    pool = load_pool(args.pool)
    report = predict_fit(profile, pool, load_catalog())
    usable = [r for r in report.rows if r.fits]
    exit_code = 0 if usable else 1
    warnings = [] if usable else ["no GPU type in the pool has enough memory for this step"]
    return CommandResult(report.to_dict(), lambda console: render_report(report, console),
                         exit_code=exit_code, warnings=warnings)
