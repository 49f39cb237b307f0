"""Run one job of a submit file on this machine the way an HTCondor execute point runs it, and
say what HTCondor would have done: test one job first, before condor_submit.

A fresh sandbox holds only transfer_input_files and the executable; the job gets its arguments,
its environment and _CONDOR_SCRATCH_DIR; request_memory and request_disk are watched (over →
held, code 34). Exit checkpoint_exit_code (85) restarts it in place with transfer_checkpoint_files
kept (a listed path missing → held, code 36). --evict-after injects an eviction: SIGTERM to the
top-level process, --grace seconds, SIGKILL, then a new sandbox with the inputs, the last
checkpoint and, only with when_to_transfer_output = ON_EXIT_OR_EVICT, the output files as they
were; the work since the last surviving checkpoint is reported lost. --evict-on-file PATH
evicts it as soon as PATH exists in the sandbox (e.g. right after its first checkpoint). At the end every
transfer_output_files entry must exist (else held, code 12); the outputs are copied to
--output-dir. container_image runs with Apptainer when it is installed, else on this machine's
Python (said in the output).

--checkpoint-every S exports ADVISOR_CHECKPOINT_INTERVAL_S=S to the job: the checkpoint wrapper
that `advisor recommend` writes then exits 85 every S seconds instead of every few hours. A job
whose executable does not read that variable keeps its own schedule (the trial says so): an
execute point has no way to make a program checkpoint.

Not like the pool: restarts come 0.5 s (exit 85) and 1 s (eviction) later instead of 0-7 s and
30-110 s; $(Cluster) is 1; no GPU is assigned; files are copied, not transferred.

Exit code 0 when the job completed, 1 when HTCondor would hold it or it failed, 2 for a submit
file, input file or executable that is not right.

Examples: advisor trial job.sub; advisor trial job.sub --job 3 --evict-after 20 --grace 5
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from advisor.commands.common import number
from advisor.errors import InputError
from advisor.logs.holdcodes import HOLD_REASONS
from advisor.output import CommandResult
from advisor.trial import TrialOptions, run_trial

HELP = "run one job of a submit file locally the way an HTCondor execute point would"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submitfile", metavar="SUBMITFILE", help="the HTCondor submit file")
    parser.add_argument("--job", type=number(integer=True, minimum=0), default=0, metavar="N",
                        help="which job of the queue statement: $(Process) N (default 0)")
    parser.add_argument("--evict-after", type=number(minimum=0), action="append",
                        default=[], metavar="S",
                        help="evict the job after S seconds of run time (repeatable)")
    parser.add_argument("--evict-on-file", action="append", default=[], metavar="PATH",
                        help="evict the job as soon as PATH exists in its sandbox, e.g. "
                        "checkpoints/checkpoint.pt: right after its first checkpoint (repeatable)")
    parser.add_argument("--checkpoint-every", type=number(integer=True, minimum=1), default=None,
                        metavar="S", help="export ADVISOR_CHECKPOINT_INTERVAL_S=S (the "
                        "written checkpoint wrapper exits 85 every S seconds)")
    parser.add_argument("--grace", type=number(minimum=0), default=600.0, metavar="S",
                        help="seconds from SIGTERM to SIGKILL at an eviction (pools: 600)")
    parser.add_argument("--timeout", type=number(minimum=1), default=3600.0, metavar="S",
                        help="stop the whole trial after S seconds (default 3600)")
    parser.add_argument("--max-restarts", type=number(integer=True, minimum=1), default=100, metavar="N",
                        help="stop after N exit-85 restarts and evictions (default 100)")
    parser.add_argument("--stage", action="append", default=[], metavar="URL=PATH",
                        help="a local copy of an osdf:// or file:///staging input (repeatable)")
    parser.add_argument("--output-dir", default=None, metavar="DIR",
                        help="where the outputs come back (default: trial-output/ next to "
                        "the submit file)")
    parser.add_argument("--keep", action="store_true", help="keep the sandboxes")


def _stage(values: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for value in values:
        url, eq, path = value.partition("=")
        if not eq or not url or not path:
            raise InputError("--stage", value, "is not URL=LOCALPATH.",
                             "write --stage 'osdf:///chtc/staging/me/data.tar.gz=data.tar.gz'.")
        local = Path(path).expanduser()
        if not local.exists():
            raise InputError("--stage", value, f"{local} does not exist.",
                             "give the path of a local copy of the file.")
        out[url] = local.resolve()
    return out


def _sandbox_paths(values: list[str]) -> list[str]:
    for value in values:
        if not value.strip() or Path(value).is_absolute() or ".." in Path(value).parts:
            raise InputError("--evict-on-file", value, "is not a path inside the job's sandbox.",
                             "give a relative path such as checkpoints/checkpoint.pt.")
    return list(values)


def run(args: argparse.Namespace) -> CommandResult:
    evict_type = number(minimum=0)
    for value in args.evict_after:   # an appended list: not checked by the CLI's own pass
        evict_type.check("--evict-after", value)
    options = TrialOptions(
        submit_file=args.submitfile, job=args.job, evict_after_s=list(args.evict_after),
        evict_on_file=_sandbox_paths(args.evict_on_file),
        checkpoint_every_s=args.checkpoint_every, grace_s=args.grace, keep=args.keep,
        output_dir=args.output_dir, timeout_s=args.timeout, max_restarts=args.max_restarts,
        stage=_stage(args.stage))
    trial = run_trial(options)
    data = trial.to_dict()

    def render(console: Console) -> None:
        title = {"completed": "[bold green]completed[/]", "failed": "[bold red]failed[/]",
                 "stopped": "[bold yellow]stopped[/]"}.get(trial.outcome, "")
        if trial.outcome == "held":
            title = (f"[bold red]held[/], code {trial.hold_code} "
                     f"({HOLD_REASONS.get(trial.hold_code or 0, 'unknown')})")
        console.print(f"Job {trial.job} of {trial.submit_file}: HTCondor would report it "
                      f"{title}", highlight=False, soft_wrap=True)
        if trial.hold_reason:
            console.print(f"  why: {trial.hold_reason}", highlight=False, soft_wrap=True)
        if trial.outcome == "failed":
            status = (f"exit status {trial.exit_code}" if trial.exit_code is not None
                      else f"killed by signal {trial.exit_signal}")
            console.print(f"  the job ended with {status}", highlight=False, soft_wrap=True)
        console.print(f"  starts {trial.starts}, exit-85 restarts {trial.checkpoint_restarts}, "
                      f"evictions {len(trial.evictions)}, run time {trial.run_time_s:.1f} s, "
                      f"work lost {trial.lost_work_s:.1f} s", highlight=False, soft_wrap=True)
        console.print(f"  memory peak {trial.peak_memory_mb:.0f} MB of {trial.request_memory_mb:g}"
                      f" MB requested; disk peak {trial.peak_disk_kb:.0f} KB of "
                      f"{trial.request_disk_kb:.0f} KB", highlight=False, soft_wrap=True)
        for i, ev in enumerate(trial.evictions, start=1):
            kept = ", ".join(ev["kept_at_eviction"]) or "nothing (only the spooled checkpoint)"
            console.print(f"  eviction {i} ({ev['injected']}) at {ev['at_run_time_s']:g} s: ended by "
                          f"{ev['ended_by']};"
                          f" kept at eviction: {kept}; work lost {ev['lost_work_s']:g} s",
                          highlight=False, soft_wrap=True)
            for key in ("note", "note_transfer"):
                if key in ev:
                    console.print(f"    {ev[key]}", highlight=False, soft_wrap=True)
        for row in trial.outputs:
            where = row["copied_to"] or "MISSING"
            remap = f" (on the pool: remapped to {row['remap']})" if row["remap"] else ""
            console.print(f"  output {row['entry']}: {where}{remap}", highlight=False, soft_wrap=True)
        if trial.container:
            console.print(f"  container: {trial.container}", highlight=False, soft_wrap=True)
        for note in trial.notes:
            console.print(f"  note: {note}", highlight=False, soft_wrap=True)
        if trial.stderr_tail and trial.outcome != "completed":
            console.print("  stderr (last lines):", highlight=False, soft_wrap=True)
            for line in trial.stderr_tail.splitlines():
                console.print(f"    {line}", highlight=False, markup=False, soft_wrap=True)
        if trial.sandboxes_kept:
            console.print(f"  sandboxes kept: {', '.join(trial.sandboxes)}", highlight=False, soft_wrap=True)

    return CommandResult(data, render, exit_code=trial.exit_status)
