"""Profile an unmodified training script: step time, input wait, FLOPs, memory, checkpoint size.

The script runs as __main__ in a child process, in this directory, with the arguments given
after `--`; it is stopped after --warmup + --steps optimizer steps. The profile goes to
profiles/<script stem>.json (or -o PATH). The advisor's options go before `--` and the script's
after it; without `--`, arguments the advisor does not know go to the script.

Examples:
  advisor profile train.py -- --epochs 1 --batch-size 64
  advisor profile --steps 10 train.py --batch-sizes 16,32,64 --batch-arg "--batch-size {bs}" --
  advisor profile --command "python infer.py --input data/"
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from advisor.commands.common import number
from advisor.errors import DomainFailure, InputError
from advisor.output import STDERR, CommandResult, check_output_file, output_error
from advisor.profiler import (
    default_output_path,
    profile_command,
    profile_script,
    runner,
    write_profile,
)
from advisor.profiler.runner import DEFAULT_DISK_LIMIT_GB, default_memory_limit_gb
from advisor.profiler.scaling import parse_batch_sizes, sweep
from advisor.tracking import add_mlflow_argument

HELP = "run a training script unmodified and write its WorkloadProfile"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("script", metavar="SCRIPT", nargs="?",
                        help="the training script, run as __main__")
    parser.add_argument("--steps", type=number(integer=True, minimum=1, maximum=10**6, example="20"),
                        default=20, help="optimizer steps to time (20)")
    parser.add_argument("--warmup", type=number(integer=True, minimum=0, maximum=10**6, example="3"),
                        default=3,
                        help="optimizer steps before timing starts (3); the last is counted")
    parser.add_argument("--timeout", type=number(above=0, maximum=10**7, example="600"),
                        default=600.0, help="seconds before the script is stopped as hung (600)")
    parser.add_argument("--memory-limit-gb", type=number(above=0, maximum=2**20, example="8"),
                        default=None, help="stop the script past this much RSS "
                        f"(default 75%% of this machine: {default_memory_limit_gb()} GiB)")
    parser.add_argument("--disk-limit-gb", type=number(above=0, maximum=2**20, example="10"),
                        default=DEFAULT_DISK_LIMIT_GB,
                        help="stop the script once it has written this much to any one file "
                             f"(default {DEFAULT_DISK_LIMIT_GB:g} GiB)")
    parser.add_argument("-o", "--output", metavar="PATH",
                        help="where to write the profile (profiles/<stem>.json)")
    parser.add_argument("--command", dest="command_line", metavar="CMD",
                        help="generic mode: measure this command as one task (wall, CPU, RSS, "
                             "bytes written, GPU memory)")
    parser.add_argument("--batch-sizes", metavar="N,N,...",
                        help="profile at each batch size and fit memory and time against it")
    parser.add_argument("--batch-arg", metavar="TEMPLATE", default="--batch-size {bs}",
                        help='the script argument that sets the batch size ("--batch-size {bs}")')
    add_mlflow_argument(parser)
    _split_at_double_dash(parser)


def _split_at_double_dash(parser: argparse.ArgumentParser) -> None:
    """Our options anywhere before `--`, the script's after it (without `--`: the unknown ones).

    argparse alone cannot do this (REMAINDER after SCRIPT would swallow `--steps 5`), so the
    sub-parser's `parse_known_args` splits the argument list first.
    """
    original = parser.parse_known_args

    def parse_known_args(args: Any = None, namespace: Any = None) -> Any:
        strings = list(args or [])
        if "--" in strings:
            cut = strings.index("--")
            ns, extras = original(strings[:cut], namespace)
            if extras:
                parser.error(f"unrecognized arguments before --: {' '.join(extras)}")
            ns.script_args = strings[cut + 1:]
        else:
            ns, extras = original(strings, namespace)
            ns.script_args = extras
        return ns, []

    parser.parse_known_args = parse_known_args  # type: ignore[method-assign]


def _fmt_bytes(n: float | None) -> str:
    if n is None:
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.3g}"


def _fmt_s(s: float | None) -> str:
    if s is None:
        return "–"
    return f"{s * 1e3:.3g} ms" if s < 1 else f"{s:.3g} s"


def render_profile(profile: dict[str, Any], path: Path, console: Console) -> None:
    table = Table(title=f"WorkloadProfile of {profile['script']} ({profile['mode']} mode)",
                  show_header=False)
    table.add_column("what")
    table.add_column("value")
    dev = profile["device"]
    table.add_row("measured on", f"{dev['kind']}: {dev.get('name') or '?'}")
    mem = profile["peak_memory_bytes"]
    if profile["mode"] == "command":
        task = profile["task"]
        table.add_row("wall time", _fmt_s(task["wall_s"]))
        table.add_row("CPU time", _fmt_s(task["cpu_s"]))
        table.add_row("peak RSS", _fmt_bytes(task["peak_rss_bytes"]))
        table.add_row("bytes written", _fmt_bytes(task.get("bytes_written")))
        table.add_row("GPU memory", _fmt_bytes(task.get("gpu_memory_bytes")))
    else:
        st = profile["step_time_s"]
        table.add_row("step time (median, p10–p90)",
                      f"{_fmt_s(st['median'])} ({_fmt_s(st['p10'])}–{_fmt_s(st['p90'])}), "
                      f"{profile['steps_measured']} steps")
        table.add_row("waiting on input", f"{profile['data_wait_fraction']:.1%} of a step")
        flops = ", ".join(f"{v:.3g} {k}" for k, v in profile["flops_by_dtype"].items())
        table.add_row("FLOPs per step", f"{profile['flops_per_step']:.3g} ({flops or 'none'}; "
                      f"counted on step {profile.get('flops_counted_on_step')})")
        table.add_row("parameters", f"{profile['parameters']:,}")
        table.add_row("batch size × micro-batches",
                      f"{profile['batch_size']} × {profile['micro_batches_per_step']}")
        table.add_row("steps per epoch", str(profile.get("steps_per_epoch") or "–"))
        table.add_row("peak device memory", _fmt_bytes(mem["device"]))
        table.add_row("peak host RSS", _fmt_bytes(mem["host"]))
        table.add_row("checkpoint", _fmt_bytes(profile.get("checkpoint_bytes")))
        prec = profile.get("precision") or {}
        table.add_row("precision", f"{prec.get('param_dtype')} params, autocast "
                      f"{prec.get('autocast_dtype') or 'off'}, TF32 matmul "
                      f"{'on' if prec.get('tf32_matmul') else 'off'}")
        data = profile.get("data")
        table.add_row("data read", f"{data['path']}: {_fmt_bytes(data['bytes'])} in "
                      f"{data['files']} files" if data else "not seen")
    console.print(table)
    scaling = profile.get("batch_scaling")
    if scaling:
        fit = scaling["memory_fit"]
        console.print(f"Memory ≈ {_fmt_bytes(fit['intercept_bytes'])} + "
                      f"{_fmt_bytes(fit['bytes_per_sample'])} per sample (r² {fit['r2']:.3f}).",
                      highlight=False)
        t = Table(title="Largest batch that fits (0.5 GiB CUDA context allowed)")
        t.add_column("GPU")
        t.add_column("memory GiB", justify="right")
        t.add_column("largest batch", justify="right")
        for row in scaling["max_batch_by_gpu"]:
            t.add_row(row["gpu"], f"{row['memory_gb']:g}", str(row["max_batch_size"] or "–"))
        console.print(t)
    console.print(f"Profile written to {path}", highlight=False)


def _show_failure(exc: DomainFailure) -> None:
    details = exc.details
    err = details.get("script_error") or {}
    for line in err.get("traceback") or []:
        STDERR.print("  " + line, highlight=False, markup=False, style="dim")
    so_far = details.get("measured_so_far")
    if so_far:
        STDERR.print("measured so far: " + ", ".join(f"{k} {v}" for k, v in so_far.items()),
                     highlight=False, markup=False)
    tail = details.get("output_tail") or []
    if tail and not err.get("traceback"):
        STDERR.print("last output of the script:", highlight=False)
        for line in tail[-10:]:
            STDERR.print("  " + line, highlight=False, markup=False, style="dim")
    STDERR.print("No profile was written.", highlight=False)


def _check_command_line(command: str) -> None:
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise InputError("--command", command, f"cannot be split into words ({exc}).",
                         "balance the quotes, e.g. --command \"python run.py --name 'a b'\".") from None
    if not words:
        raise InputError("--command", command, "is empty.", 'give e.g. --command "python run.py"')


def run(args: argparse.Namespace) -> CommandResult:
    mlflow_uri = None
    if args.mlflow is not None:
        from advisor import tracking

        mlflow_uri = tracking.check(args.mlflow)
    common = {"timeout_s": args.timeout, "memory_limit_gb": args.memory_limit_gb}
    limits = {"disk_limit_bytes": int(args.disk_limit_gb * 2**30)}
    try:
        if args.command_line:
            if args.script or args.script_args:
                raise InputError("SCRIPT", args.script, "give a script or --command, not both.",
                                 "drop one of them")
            _check_command_line(args.command_line)
            path = Path(args.output) if args.output else default_output_path(args.command_line)
            check_output_file(path)     # before the run: a profile that cannot be written is lost
            with runner.limits(**limits):
                profile = profile_command(args.command_line, **common)
        else:
            if not args.script:
                raise InputError("SCRIPT", None, "is missing.",
                                 "give the training script: advisor profile train.py -- ARGS")
            path = Path(args.output) if args.output else default_output_path(args.script)
            check_output_file(path)

            def one(script_args: list[str]) -> dict[str, Any]:
                return profile_script(args.script, script_args, steps=args.steps,
                                      warmup=args.warmup, **common)

            with runner.limits(**limits):
                if args.batch_sizes:
                    sizes = parse_batch_sizes(args.batch_sizes)
                    profiles, scaling = sweep(one, args.script_args, sizes, args.batch_arg,
                                              progress=lambda m: STDERR.print(m, highlight=False))
                    profile = profiles[0]
                    profile["batch_scaling"] = scaling
                else:
                    profile = one(list(args.script_args))
    except DomainFailure as exc:
        _show_failure(exc)
        raise
    warnings = profile.pop("warnings", [])
    try:
        write_profile(profile, path)
    except OSError as exc:
        raise output_error("-o", path, exc) from exc
    data = dict(profile, profile_path=str(path))
    if mlflow_uri is not None:
        data["mlflow"] = tracking.log_profile(mlflow_uri, profile, path)
    return CommandResult(data, lambda console: render_profile(profile, path, console),
                         warnings=warnings)
