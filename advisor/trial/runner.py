"""A trial: one job of a submit file run start after start until HTCondor would be done with it.

What happens between starts follows docs/DOMAIN.md ("What HTCondor actually does"):

* exit `checkpoint_exit_code` (85): `transfer_checkpoint_files` go to the spool and the job starts
  again in the same sandbox (a listed path missing → held, code 36);
* an eviction: a new sandbox with the inputs, the spooled checkpoint and, only with
  `when_to_transfer_output = ON_EXIT_OR_EVICT`, the output files as they were at the eviction;
  the work since the last checkpoint that survived is lost, and an exit 0 during the vacate
  does not complete the job;
* the end: every `transfer_output_files` entry must exist (else held, code 12).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advisor.emit.common import CHECKPOINT_INTERVAL_ENV
from advisor.errors import InputError
from advisor.fstree import newest_mtime, tree_bytes
from advisor.trial import sandbox as sb
from advisor.trial.execute import (
    StartResult,
    command_for,
    find_apptainer,
    job_environment,
    run_start,
)
from advisor.trial.job import DEFAULT_DISK_MIN_KB, Job, read_job
from advisor.trial.syntax import is_url

CHECKPOINT_RESTART_GAP_S = 0.5   # HTCondor: 0-7 s (docs/DOMAIN.md)
EVICTION_RESTART_GAP_S = 1.0     # HTCondor: 11-430 s, typically 30-110 s (docs/DOMAIN.md)
OUTPUT_MARKER = ".advisor-trial"
STALE_CHECKPOINTS = 5            # exit-85s in a row with no new checkpoint: no progress, stop


@dataclass
class TrialOptions:
    submit_file: str
    job: int = 0
    evict_after_s: list[float] = field(default_factory=list)
    evict_on_file: list[str] = field(default_factory=list)   # sandbox paths
    checkpoint_every_s: int | None = None    # exported as CHECKPOINT_INTERVAL_ENV (whole seconds)
    grace_s: float = 600.0
    keep: bool = False
    output_dir: str | None = None
    timeout_s: float = 3600.0
    max_restarts: int = 100
    stage: dict[str, Path] = field(default_factory=dict)


@dataclass
class Trial:
    """What happened, and what HTCondor would have done."""

    submit_file: str
    job: int
    outcome: str = "running"           # completed | held | failed | stopped
    hold_code: int | None = None
    hold_reason: str = ""
    exit_code: int | None = None
    exit_signal: int | None = None
    stderr_tail: str = ""
    starts: int = 0                    # starts in a new sandbox (NumJobStarts)
    checkpoint_restarts: int = 0       # exit-85 restarts in place
    evictions: list[dict[str, Any]] = field(default_factory=list)
    lost_work_s: float = 0.0
    run_time_s: float = 0.0
    peak_memory_mb: float = 0.0
    request_memory_mb: float = 0.0
    peak_disk_kb: float = 0.0
    request_disk_kb: float = 0.0
    outputs: list[dict[str, Any]] = field(default_factory=list)
    output_dir: str = ""
    container: str = ""
    sandboxes: list[str] = field(default_factory=list)
    sandboxes_kept: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        return 0 if self.outcome == "completed" else 1

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict
        return {**asdict(self), "exit_status": self.exit_status}


def _output_dir(job: Job, option: str | None) -> Path:
    folder = Path(option) if option else job.submit_path.parent / "trial-output"
    if folder.exists() and not folder.is_dir():
        raise InputError("--output-dir", str(folder), "is a file.", "give a folder.")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / OUTPUT_MARKER).exists():
        raise InputError("--output-dir", str(folder), "holds files that advisor trial did not "
                         "write; a trial would mix its outputs with them.",
                         "give a new or empty folder with --output-dir.")
    return folder


def _container(job: Job, trial: Trial) -> str | None:
    if not job.container_image:
        return None
    apptainer = find_apptainer()
    if apptainer is None:
        trial.container = (f"container_image = {job.container_image}: Apptainer is not installed "
                           "here, so the job ran on this machine's software (PATH starts with "
                           "the advisor's Python); on the pool it runs inside the image.")
        return None
    if is_url(job.container_image) and not job.container_image.startswith("docker://"):
        raise InputError(f"{job.line_of('container_image')}: container_image", job.container_image,
                         "is a URL Apptainer cannot fetch here.",
                         f"give a local copy: --stage '{job.container_image}=IMAGE.sif'.",
                         source=str(job.submit_path))
    trial.container = f"ran in {job.container_image} with {apptainer} exec"
    return apptainer


def _reads_interval(job: Job) -> bool:
    try:
        return CHECKPOINT_INTERVAL_ENV in job.executable.read_text(encoding="utf-8", errors="ignore")
    except OSError:
        return False


def _checkpoint_entries(job: Job, sandbox: Path, before: dict[str, float]) -> list[str]:
    """transfer_checkpoint_files; without it HTCondor checkpoints what it would send back."""
    if job.checkpoint_files is not None:
        return job.checkpoint_files
    return job.outputs if job.outputs is not None else sb.new_or_changed(sandbox, before)


def _hold(trial: Trial, code: int, reason: str) -> None:
    trial.outcome, trial.hold_code, trial.hold_reason = "held", code, reason


def _surviving_mtime(job: Job, kept: list[str], evict_spool: Path) -> float | None:
    """The newest write, among the checkpoint files kept at an eviction, in wall time."""
    ckpt = {e.rstrip("/") for e in (job.checkpoint_files if job.checkpoint_files is not None
                                    else job.outputs or [])}
    newest: float | None = None
    for entry in kept:
        name = entry.rstrip("/")
        if name not in ckpt:
            continue
        dest = evict_spool / (name if job.preserve_relative_paths else Path(name).name)
        stamp = newest_mtime(dest) if dest.is_dir() else None
        if dest.exists():
            stamp = max(stamp or 0.0, dest.stat().st_mtime)
        if stamp is not None:
            newest = stamp if newest is None else max(newest, stamp)
    return newest


def _copy_back(job: Job, sandbox: Path, entries: list[str], out_dir: Path, trial: Trial) -> None:
    for entry in entries:
        name = entry.rstrip("/")
        src = sandbox / name
        dest_name = name if job.preserve_relative_paths else Path(name).name
        row: dict[str, Any] = {"entry": entry, "exists": src.exists(), "copied_to": None,
                               "remap": job.remaps.get(dest_name) or job.remaps.get(name)}
        if src.exists():
            sb.copy_any(src, out_dir / dest_name)
            row["copied_to"] = str(out_dir / dest_name)
            row["bytes"] = tree_bytes(src)
        trial.outputs.append(row)


def _finish_streams(job: Job, sandbox: Path, out_dir: Path) -> None:
    for own, name in ((sb.STDOUT_NAME, job.stdout_name), (sb.STDERR_NAME, job.stderr_name)):
        if name and (sandbox / own).exists():
            sb.copy_any(sandbox / own, out_dir / Path(name).name)


def run_trial(options: TrialOptions) -> Trial:
    job = read_job(options.submit_file, options.job, options.stage)
    trial = Trial(submit_file=str(job.submit_path), job=job.process, notes=list(job.notes))
    out_dir = _output_dir(job, options.output_dir)
    apptainer = _container(job, trial)
    extra: dict[str, str] = {}
    if options.checkpoint_every_s is not None:
        extra[CHECKPOINT_INTERVAL_ENV] = str(int(options.checkpoint_every_s))
        if not _reads_interval(job):
            trial.notes.append(f"--checkpoint-every: {job.executable.name} does not read "
                               f"{CHECKPOINT_INTERVAL_ENV}, so the job kept its own checkpoint "
                               "schedule.")
    trial.request_memory_mb = job.request_memory_mb
    if job.request_memory_default:
        trial.notes.append(f"request_memory is not set: HTCondor's default "
                           f"{job.request_memory_mb:g} MB applies.")
    input_kb = sum(tree_bytes(i.source) for i in job.inputs) / 1024.0
    trial.request_disk_kb = job.request_disk_kb if not job.request_disk_default else max(
        DEFAULT_DISK_MIN_KB, 1.25 * input_kb)
    spool_root = sb.new_folder(sb.SPOOL_PREFIX)
    ckpt_spool, evict_spool = spool_root / "checkpoint", spool_root / "evict"
    evictions = sorted(options.evict_after_s)
    file_evictions = list(options.evict_on_file)
    deadline = time.monotonic() + options.timeout_s
    sandbox: Path | None = None
    before: dict[str, float] = {}
    survivor_clock = 0.0      # run time the last surviving checkpoint stands for
    last_spool_wall = 0.0
    last_checkpoint_mtime: float | None = None
    stale = 0                 # exit-85s in a row with nothing new in the checkpoint
    try:
        while True:
            if sandbox is None:
                sandbox = sb.new_folder(sb.SANDBOX_PREFIX)
                trial.sandboxes.append(str(sandbox))
                sb.populate(sandbox, job)
                for kept in (ckpt_spool, evict_spool):
                    if kept.is_dir():
                        sb.merge_into(kept, sandbox)
                trial.starts += 1
                sb.write_job_ad(sandbox, job, trial.starts)
                before = sb.top_level_state(sandbox)
                command = command_for(job, sandbox, apptainer)
                env = job_environment(job, sandbox, apptainer is not None, extra)
            evict_in = evictions[0] - trial.run_time_s if evictions else None
            result = run_start(job, sandbox, env, command, evict_after_s=evict_in,
                               grace_s=options.grace_s, deadline=deadline,
                               disk_limit_kb=trial.request_disk_kb,
                               evict_on_file=sandbox / file_evictions[0] if file_evictions else None)
            trial.run_time_s += result.runtime_s
            trial.peak_memory_mb = max(trial.peak_memory_mb, result.peak_memory_mb)
            trial.peak_disk_kb = max(trial.peak_disk_kb, result.peak_disk_kb)
            trial.exit_code, trial.exit_signal = result.exit_code, result.exit_signal
            if result.how == "timeout":
                trial.outcome = "stopped"
                trial.notes.append(f"the trial stopped at --timeout {options.timeout_s:g} s before "
                                   "the job ended; HTCondor would have let it run on.")
                break
            if result.how in ("memory", "disk"):
                what, used = ("memory", result.detail) if result.how == "memory" else (
                    "disk", result.detail)
                asked = (f"request_memory = {job.request_memory_mb:g} MB" if what == "memory"
                         else f"request_disk = {trial.request_disk_kb:.0f} KB")
                _hold(trial, 34, f"the job used {used} of {what}, more than its {asked}; the "
                      f"execute point stopped it. Raise the request (or use less {what}).")
                break
            if result.how == "evicted":
                (evictions if result.evicted_by == "time" else file_evictions).pop(0)
                survivor_clock, last_spool_wall = _evicted(
                    job, trial, sandbox, before, result, evict_spool, survivor_clock,
                    last_spool_wall)
                if not options.keep:
                    sb.remove(sandbox)
                sandbox = None
                if _too_many(trial, options):
                    break
                time.sleep(EVICTION_RESTART_GAP_S)
                continue
            if result.exit_code is None and result.exit_signal is None:
                _hold(trial, 6, result.detail + " (is it executable, with a #! line?)")
                break
            if job.checkpoint_exit_code is not None and result.exit_code == job.checkpoint_exit_code:
                entries = _checkpoint_entries(job, sandbox, before)
                absent = sb.missing(sandbox, entries)
                if absent:
                    _hold(trial, 36, f"exit {job.checkpoint_exit_code} (checkpoint "
                          f"{trial.checkpoint_restarts + 1}) but transfer_checkpoint_files names "
                          f"{', '.join(absent)}, which is not in the sandbox. Create it when the "
                          "job starts (e.g. `mkdir -p checkpoints`).")
                    break
                sb.spool(sandbox, entries, ckpt_spool, relative=True)
                last_spool_wall, survivor_clock = time.time(), trial.run_time_s
                trial.checkpoint_restarts += 1
                newest = newest_mtime(ckpt_spool)
                stale = stale + 1 if newest is None or newest == last_checkpoint_mtime else 0
                last_checkpoint_mtime = newest
                if stale >= STALE_CHECKPOINTS or _too_many(trial, options):
                    if stale >= STALE_CHECKPOINTS:
                        trial.outcome = "stopped"
                        trial.notes.append(
                            f"the job exited {job.checkpoint_exit_code} {stale} times in a row "
                            "without writing anything new to its checkpoint: it makes no "
                            "progress (is the interval shorter than its start-up?).")
                    break
                time.sleep(CHECKPOINT_RESTART_GAP_S)
                continue
            _ended(job, trial, sandbox, before, result, out_dir)
            break
        if sandbox is not None:
            _prepare(out_dir)
            _finish_streams(job, sandbox, out_dir)
            trial.output_dir = str(out_dir)
            if trial.stderr_tail == "" and trial.outcome != "completed":
                trial.stderr_tail = sb.tail(sandbox / sb.STDERR_NAME)
    finally:
        sb.remove(spool_root)
        trial.sandboxes_kept = options.keep
        if not options.keep:
            for path in trial.sandboxes:
                sb.remove(Path(path))
    return trial


def _too_many(trial: Trial, options: TrialOptions) -> bool:
    if trial.checkpoint_restarts + len(trial.evictions) < options.max_restarts:
        return False
    trial.outcome = "stopped"
    trial.notes.append(f"the trial stopped after {options.max_restarts} restarts "
                       f"({trial.checkpoint_restarts} at exit 85, {len(trial.evictions)} evictions) "
                       "without the job ending: does it ever finish?")
    return True


def _prepare(out_dir: Path) -> None:
    if out_dir.is_dir() and (out_dir / OUTPUT_MARKER).exists():
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / OUTPUT_MARKER).write_text("written by advisor trial\n", encoding="utf-8")


def _evicted(job: Job, trial: Trial, sandbox: Path, before: dict[str, float], result: StartResult,
             evict_spool: Path, survivor_clock: float, last_spool_wall: float) -> tuple[float, float]:
    kept: list[str] = []
    # Work is counted up to the SIGTERM: what the job does after it is the vacate itself.
    term_clock = trial.run_time_s - (result.ended_at - (result.term_sent_at or result.ended_at))
    if job.when_to_transfer_output == "ON_EXIT_OR_EVICT":
        entries = job.outputs if job.outputs is not None else sb.new_or_changed(sandbox, before)
        kept = sb.spool(sandbox, entries, evict_spool, relative=job.preserve_relative_paths)
        newest = _surviving_mtime(job, kept, evict_spool)
        if newest is not None and newest > last_spool_wall:
            # a checkpoint written on the SIGTERM stands for the work done until the SIGTERM
            at = min(term_clock, trial.run_time_s - max(0.0, result.ended_at - newest))
            if at > survivor_clock:
                survivor_clock, last_spool_wall = at, newest
    lost = max(0.0, term_clock - survivor_clock)
    trial.lost_work_s += lost
    # The next sandbox starts from what survived; the rest is counted as lost once, here.
    survivor_clock, last_spool_wall = trial.run_time_s, max(last_spool_wall, result.ended_at)
    record = {
        "at_run_time_s": round(trial.run_time_s, 2),
        "injected": "--evict-after" if result.evicted_by == "time" else "--evict-on-file",
        "ended_by": "SIGKILL after the grace period" if result.needed_kill else "SIGTERM",
        "exit_code": result.exit_code, "exit_signal": result.exit_signal,
        "kept_at_eviction": kept,
        "lost_work_s": round(lost, 2),
    }
    if result.exit_code == 0:
        record["note"] = "exit 0 during a vacate does not complete the job: it runs again"
    if job.when_to_transfer_output != "ON_EXIT_OR_EVICT":
        record["note_transfer"] = ("when_to_transfer_output is not ON_EXIT_OR_EVICT: only the "
                                   "checkpoint of the last exit 85 survives")
    trial.evictions.append(record)
    return survivor_clock, last_spool_wall


def _ended(job: Job, trial: Trial, sandbox: Path, before: dict[str, float], result: StartResult,
           out_dir: Path) -> None:
    code = result.exit_code
    transfers = not (job.when_to_transfer_output == "ON_SUCCESS" and code != 0)
    entries = job.outputs if job.outputs is not None else sb.new_or_changed(sandbox, before)
    if transfers:
        _prepare(out_dir)
        _copy_back(job, sandbox, entries, out_dir, trial)
    sent = {r["entry"].rstrip("/") for r in trial.outputs} | {
        Path(r["entry"].rstrip("/")).name for r in trial.outputs}
    for name, dest in job.remaps.items():
        if name not in sent:
            trial.notes.append(f"transfer_output_remaps sends {name} to {dest}, but no "
                               "transfer_output_files entry has that name; remaps apply to the "
                               "names listed there.")
    absent = sb.missing(sandbox, job.outputs or []) if transfers else []
    if code != 0:
        trial.stderr_tail = sb.tail(sandbox / sb.STDERR_NAME)
    if absent:
        status = (f"exit {code}" if code is not None else f"signal {result.exit_signal}")
        _hold(trial, 12, f"the job ended ({status}) without {', '.join(absent)}, which "
              "transfer_output_files lists; HTCondor cannot transfer the output. Make the job "
              "write it (e.g. `mkdir -p output` first), or drop it from transfer_output_files.")
    elif code == 0:
        trial.outcome = "completed"
    else:
        trial.outcome = "failed"
