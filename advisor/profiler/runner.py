"""Parent side of a profiling run: spawn the child, watch it, stop it, collect what it measured.

The child runs in its own session (so its DataLoader workers and any subprocesses share one
process group that can be killed at once). While it runs, a watchdog polls the RSS of every
process in the session: past the memory limit, or past the timeout, the child is asked to stop
(SIGTERM: it writes what it has measured) and then the whole group is killed. Nothing of the
child survives `run_child`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE")
_ADVISOR_ROOT = str(Path(__file__).resolve().parents[2])


def total_memory_bytes() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def default_memory_limit_gb() -> float:
    """75% of this machine's memory: enough for any script that would run here anyway."""
    return round(0.75 * total_memory_bytes() / 2**30, 1)


def session_processes(sid: int) -> list[int]:
    """Pids of live (not zombie) processes in session `sid`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 3 and fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(entry))
    return pids


def session_rss_bytes(sid: int) -> int:
    total = 0
    for pid in session_processes(sid):
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


def _gpu_memory_bytes(pids: list[int]) -> int | None:
    """GPU memory used by these processes per nvidia-smi, None where it cannot be seen."""
    exe = shutil.which("nvidia-smi")
    if exe is None or not pids:
        return None
    try:
        out = subprocess.run([exe, "--query-compute-apps=pid,used_memory",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True,
                             timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    used = 0
    wanted = set(pids)
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) in wanted:
            try:
                used += int(float(parts[1])) * 2**20
            except ValueError:
                pass
    return used


def kill_session(sid: int, grace_s: float = 5.0) -> None:
    """SIGKILL every process of the session and wait until none is left."""
    deadline = time.monotonic() + grace_s
    while True:
        pids = session_processes(sid)
        if not pids:
            return
        try:
            os.killpg(sid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in pids:  # in case one changed its process group
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if time.monotonic() > deadline:
            return
        time.sleep(0.02)


@dataclass
class ChildOutcome:
    """What came back from one child run."""

    returncode: int | None
    results: dict[str, Any] | None
    wall_s: float
    peak_rss_bytes: int
    timed_out: bool = False
    memory_exceeded: bool = False
    gpu_memory_bytes: int | None = None
    output_tail: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return bool(self.results and self.results.get("complete"))


def run_child(config: dict[str, Any], *, cwd: str | Path, timeout_s: float,
              memory_limit_bytes: int, poll_s: float = 0.1, tail_lines: int = 20,
              echo: Any = None) -> ChildOutcome:
    """Run `python -m advisor.profiler._child` with `config`; always leaves nothing behind."""
    run_dir = Path(tempfile.mkdtemp(prefix="advisor-profile-"))
    try:
        cfg_path = run_dir / "config.json"
        cfg_path.write_text(json.dumps(config))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_ADVISOR_ROOT, env.get("PYTHONPATH")) if p)
        log_path = run_dir / "output.log"
        with open(log_path, "wb") as log:
            t0 = time.monotonic()
            proc = subprocess.Popen([sys.executable, "-m", "advisor.profiler._child",
                                     str(cfg_path)], cwd=str(cwd), env=env,
                                    stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            sid = proc.pid
            with _terminate_as_exit():
                outcome = _watch(proc, sid, t0, timeout_s, memory_limit_bytes, poll_s)
        results = None
        res_path = run_dir / "results.json"
        if res_path.exists():
            try:
                results = json.loads(res_path.read_text())
            except json.JSONDecodeError:
                results = None
        outcome.results = results
        outcome.output_tail = _tail(log_path, tail_lines)
        return outcome
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _watch(proc: subprocess.Popen, sid: int, t0: float, timeout_s: float,
           memory_limit_bytes: int, poll_s: float) -> ChildOutcome:
    peak = 0
    gpu_peak: int | None = None
    timed_out = memory_exceeded = False
    next_gpu = 0.0
    try:
        while proc.poll() is None:
            rss = session_rss_bytes(sid)
            peak = max(peak, rss)
            now = time.monotonic()
            if now >= next_gpu:
                used = _gpu_memory_bytes(session_processes(sid))
                if used is not None:
                    gpu_peak = max(gpu_peak or 0, used)
                next_gpu = now + 1.0
            if rss > memory_limit_bytes:
                memory_exceeded = True
            elif now - t0 > timeout_s:
                timed_out = True
            if timed_out or memory_exceeded:
                _stop(proc, sid, grace_s=0.5 if memory_exceeded else 2.0)
                break
            time.sleep(poll_s)
    finally:  # also on KeyboardInterrupt in the parent
        if proc.poll() is None:
            _stop(proc, sid, grace_s=0.5)
        kill_session(sid)
        proc.wait()
    return ChildOutcome(returncode=proc.returncode, results=None, wall_s=time.monotonic() - t0,
                        peak_rss_bytes=peak, timed_out=timed_out,
                        memory_exceeded=memory_exceeded, gpu_memory_bytes=gpu_peak)


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """While the child runs, SIGTERM/SIGHUP to the advisor unwind (and so kill the child) too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    saved = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)


def _stop(proc: subprocess.Popen, sid: int, grace_s: float) -> None:
    """Ask the child to write what it has (SIGTERM), then kill the whole group."""
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        pass
    kill_session(sid)


def _tail(path: Path, n: int) -> list[str]:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-n:]
