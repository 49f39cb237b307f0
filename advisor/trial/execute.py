"""One start of the job in its sandbox, watched the way an execute point watches it.

The executable runs in its own process group (the starter's process family). While it runs:
the memory of its processes (proportional set size, each shared page counted once, as the
slot's cgroup counts it) against `request_memory`, the sandbox's size against `request_disk`;
either over its request stops the job at once (SIGKILL to the group; HTCondor holds it with
code 34). An eviction sends SIGTERM to the top-level process only, waits the grace period, then
SIGKILLs the group (docs/DOMAIN.md: "Eviction signal"). When the top-level process ends, whatever it
left running in its group is killed, as the starter does.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from advisor.fstree import tree_bytes
from advisor.procfs import children_map, process_table, pss_bytes
from advisor.trial.job import CLUSTER_ID, Job
from advisor.trial.sandbox import STDERR_NAME, STDOUT_NAME

POLL_S = 0.05            # how often the process is polled
MEMORY_EVERY_S = 0.2     # how often its memory is measured
DISK_EVERY_S = 1.0       # how often the sandbox is measured
CONTAINER_SANDBOX = "/srv"   # where CHTC's Apptainer jobs see their sandbox
# HTCondor sets these to the slot's CPUs (STARTER_NUM_THREADS_ENV_VARS).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass
class StartResult:
    """How one start ended: `how` is exited, evicted, memory, disk or timeout."""

    how: str
    exit_code: int | None
    exit_signal: int | None
    started_at: float         # time.time() at start
    ended_at: float
    peak_memory_mb: float
    peak_disk_kb: float
    term_sent_at: float | None = None
    needed_kill: bool = False  # SIGKILL after the grace period
    detail: str = ""
    evicted_by: str = ""       # "time" (--evict-after) or "file" (--evict-on-file)

    @property
    def runtime_s(self) -> float:
        return self.ended_at - self.started_at


def find_apptainer() -> str | None:
    return shutil.which("apptainer") or shutil.which("singularity")


def command_for(job: Job, sandbox: Path, apptainer: str | None) -> list[str]:
    """The command line the starter runs (through Apptainer when the job names an image and
    Apptainer is here)."""
    exe = f"./{job.executable.name}" if job.transfer_executable else str(job.executable)
    if job.container_image and apptainer:
        return [apptainer, "exec", "--cleanenv", "--no-home", "--bind",
                f"{sandbox}:{CONTAINER_SANDBOX}", "--pwd", CONTAINER_SANDBOX,
                job.container_image, exe, *job.arguments]
    return [exe, *job.arguments]


def job_environment(job: Job, sandbox: Path, in_container: bool,
                    extra: dict[str, str] | None = None) -> dict[str, str]:
    """The job's environment: the execute point's variables, then `getenv`, then the submit
    file's `environment` (which wins, as in HTCondor)."""
    scratch = CONTAINER_SANDBOX if in_container else str(sandbox)
    local_path = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
    env: dict[str, str] = {"PATH": local_path} if not in_container else {}
    env.update({
        "_CONDOR_SCRATCH_DIR": scratch, "_CONDOR_JOB_IWD": scratch,
        "_CONDOR_JOB_AD": f"{scratch}/.job.ad", "_CONDOR_SLOT": "slot1_1",
        "TMPDIR": scratch, "TMP": scratch, "TEMP": scratch,
        "BATCH_SYSTEM": "HTCondor", "CONDOR_CLUSTER_ID": str(CLUSTER_ID),
        "CONDOR_PROC_ID": str(job.process),
    })
    env.update({name: str(job.request_cpus) for name in THREAD_VARIABLES})
    getenv = job.getenv.strip().strip('"')
    if getenv.lower() in ("true", "yes", "1"):
        env.update(os.environ)
    elif getenv.lower() not in ("false", "no", "0", ""):
        for name in (n.strip() for n in getenv.replace(",", " ").split()):
            if name in os.environ:
                env[name] = os.environ[name]
    env.update(job.environment)
    env.update(extra or {})
    if in_container:   # Apptainer passes APPTAINERENV_X into the container as X
        return {**{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "USER")},
                **{f"APPTAINERENV_{k}": v for k, v in env.items()}}
    return env


def job_processes(top: int) -> list[int]:
    """The job's process family: the top-level process, its descendants and its group."""
    table = process_table()
    children = children_map(table, zombies=True)
    family = {row.pid for row in table if row.pgrp == top}
    stack = [top]
    while stack:
        pid = stack.pop()
        if pid in family and pid != top:
            continue
        family.add(pid)
        stack += children.get(pid, [])
    alive = {row.pid for row in table}
    return sorted(family & alive)


def family_memory_mb(top: int) -> float:
    return sum(pss_bytes(p) or 0 for p in job_processes(top)) / 2**20


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_start(job: Job, sandbox: Path, env: dict[str, str], command: list[str], *,
              evict_after_s: float | None, grace_s: float, deadline: float,
              disk_limit_kb: float, evict_on_file: Path | None = None) -> StartResult:
    """Run the job once in `sandbox` until it exits, is evicted (`evict_after_s` seconds into
    this start, or as soon as `evict_on_file` exists), goes over a request or the trial's
    deadline (time.monotonic()) passes."""
    with (sandbox / STDOUT_NAME).open("ab") as out, (sandbox / STDERR_NAME).open("ab") as err:
        started = time.time()
        t0 = time.monotonic()
        try:
            proc = subprocess.Popen(command, cwd=sandbox, env=env, stdout=out, stderr=err,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            return StartResult("exited", None, None, started, time.time(), 0.0, 0.0,
                               detail=f"the execute point could not start {command[0]}: {exc}")
    try:
        return _watch(job, sandbox, proc, started, t0, evict_after_s, grace_s, deadline,
                      disk_limit_kb, evict_on_file)
    except BaseException:   # Ctrl-C or an error here: the job must not outlive the trial
        _kill_group(proc.pid)
        proc.wait()
        raise


def _watch(job: Job, sandbox: Path, proc: subprocess.Popen, started: float, t0: float,
           evict_after_s: float | None, grace_s: float, deadline: float, disk_limit_kb: float,
           evict_on_file: Path | None) -> StartResult:
    peak_mem = peak_disk = 0.0
    next_mem = next_disk = t0
    term_at: float | None = None
    term_wall: float | None = None
    how, detail, evicted_by = "exited", "", ""
    while True:
        code = proc.poll()
        if code is not None:
            break
        now = time.monotonic()
        by_time = evict_after_s is not None and now - t0 >= evict_after_s
        if term_at is None and (by_time or (evict_on_file is not None and evict_on_file.exists())):
            term_at, term_wall = now, time.time()
            how, evicted_by = "evicted", "time" if by_time else "file"
            try:
                proc.send_signal(signal.SIGTERM)      # the top-level process only
            except ProcessLookupError:
                pass
        if term_at is not None and now - term_at >= grace_s:
            _kill_group(proc.pid)
            proc.wait()
            result = _ended(proc, "evicted", started, peak_mem, peak_disk, term_wall, True,
                            f"did not exit within the {grace_s:g} s grace period: SIGKILL")
            result.evicted_by = evicted_by
            return result
        if now >= next_mem:
            next_mem = now + MEMORY_EVERY_S
            mem = family_memory_mb(proc.pid)
            peak_mem = max(peak_mem, mem)
            if mem > job.request_memory_mb:
                how, detail = "memory", f"{mem:.0f} MB"
                break
        if now >= next_disk:
            next_disk = now + DISK_EVERY_S
            disk_kb = tree_bytes(sandbox) / 1024.0
            peak_disk = max(peak_disk, disk_kb)
            if disk_kb > disk_limit_kb:
                how, detail = "disk", f"{disk_kb:.0f} KB"
                break
        if now >= deadline:
            how = "timeout"
            break
        time.sleep(POLL_S)
    _kill_group(proc.pid)   # the starter kills what the job left behind, and a job over a limit
    proc.wait()
    peak_disk = max(peak_disk, tree_bytes(sandbox) / 1024.0)
    result = _ended(proc, how, started, peak_mem, peak_disk, term_wall, False, detail)
    result.evicted_by = evicted_by
    return result


def _ended(proc: subprocess.Popen, how: str, started: float, peak_mem: float, peak_disk: float,
           term_wall: float | None, killed: bool, detail: str) -> StartResult:
    code = proc.returncode
    exit_code, exit_signal = (code, None) if code is not None and code >= 0 else (None, -(code or 0))
    return StartResult(how, exit_code, exit_signal, started, time.time(), peak_mem, peak_disk,
                       term_wall, killed, detail)
