"""Parent side of a profiling run: spawn the child, watch it, stop it, collect what it measured.

Containment: the child runs under a small keeper process (`_keeper.py`) that is a child
subreaper, so every process the script starts stays its descendant even after `setsid()` or a
double fork; the keeper gets SIGTERM when the advisor dies (even by `kill -9`) and then kills
the whole tree and removes the run directory; the advisor is a subreaper too. While the child
runs, a watchdog polls the RSS and the bytes written of every descendant: past the memory limit,
the disk-write limit, or the timeout, the child is asked to stop (SIGTERM: it writes what it has
measured) and then every descendant is killed. Each file the script writes is also capped by
RLIMIT_FSIZE at the disk-write limit. Nothing of the child survives `run_child`, and run
directories left by an advisor that died are removed by the next run.
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

from advisor.procfs import children_map, descendants, kill_tree, write_bytes
from advisor.profiler import _keeper

_PAGE = os.sysconf("SC_PAGE_SIZE")
_ADVISOR_ROOT = str(Path(__file__).resolve().parents[2])
RUN_DIR_PREFIX = "advisor-profile-"
DEFAULT_DISK_LIMIT_GB = 1.0     # what a profiled script may write (per file, and in all)
_STALE_UNOWNED_S = 24 * 3600.0  # a run directory without a pid in its name: stale after a day
_LIMITS: dict[str, Any] = {"disk_limit_bytes": int(DEFAULT_DISK_LIMIT_GB * 2**30)}


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


@dataclass
class ChildOutcome:
    """What came back from one child run."""

    returncode: int | None
    results: dict[str, Any] | None
    wall_s: float
    peak_rss_bytes: int
    timed_out: bool = False
    memory_exceeded: bool = False
    disk_exceeded: bool = False
    bytes_written: int = 0
    gpu_memory_bytes: int | None = None
    output_tail: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return bool(self.results and self.results.get("complete"))


@contextlib.contextmanager
def limits(*, disk_limit_bytes: int | None = None) -> Iterator[None]:
    """Within the block, runs use these limits (the CLI's --disk-limit-gb)."""
    saved = dict(_LIMITS)
    if disk_limit_bytes is not None:
        _LIMITS["disk_limit_bytes"] = int(disk_limit_bytes)
    try:
        yield
    finally:
        _LIMITS.clear()
        _LIMITS.update(saved)


def disk_limit_bytes() -> int:
    """The disk-write limit runs use now."""
    return int(_LIMITS["disk_limit_bytes"])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_run_dirs(base: str | Path | None = None) -> list[Path]:
    """Remove run directories left by advisors that died (their pid is gone)."""
    removed: list[Path] = []
    root = Path(base or tempfile.gettempdir())
    try:
        entries = list(root.glob(RUN_DIR_PREFIX + "*"))
    except OSError:
        return removed
    now = time.time()
    for d in entries:
        rest = d.name[len(RUN_DIR_PREFIX):]
        pid_text = rest.split("-", 1)[0]
        try:
            if not d.is_dir() or d.is_symlink() or d.stat().st_uid != os.getuid():
                continue
            if pid_text.isdigit() and "-" in rest:
                stale = int(pid_text) != os.getpid() and not _pid_alive(int(pid_text))
            else:       # made by an older advisor, without its pid
                stale = now - d.stat().st_mtime > _STALE_UNOWNED_S
        except OSError:
            continue
        if stale:
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def tree_rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


def run_child(config: dict[str, Any], *, cwd: str | Path, timeout_s: float,
              memory_limit_bytes: int, poll_s: float = 0.1, tail_lines: int = 20,
              echo: Any = None, disk_limit_bytes: int | None = None) -> ChildOutcome:
    """Run `python -m advisor.profiler._child` with `config`; always leaves nothing behind."""
    disk_limit = int(disk_limit_bytes or _LIMITS["disk_limit_bytes"])
    clean_stale_run_dirs()
    _keeper.set_subreaper()  # orphans of the run come back to us if the keeper is killed
    # what this process had already (its zombies too: their exit status is not ours to reap)
    before = set(descendants(os.getpid(), children_map(zombies=True)))
    run_dir = Path(tempfile.mkdtemp(prefix=f"{RUN_DIR_PREFIX}{os.getpid()}-"))
    try:
        cfg_path = run_dir / "config.json"
        cfg_path.write_text(json.dumps(config))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_ADVISOR_ROOT, env.get("PYTHONPATH")) if p)
        log_path = run_dir / "output.log"
        log_path.touch()
        t0 = time.monotonic()
        keeper = subprocess.Popen(
            [sys.executable, "-m", "advisor.profiler._keeper", str(os.getpid()), "2.0",
             str(run_dir), str(disk_limit), "--", sys.executable, "-m",
             "advisor.profiler._child", str(cfg_path)],
            cwd=str(cwd), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            with _terminate_as_exit():
                outcome = _watch(keeper, t0, timeout_s, memory_limit_bytes, disk_limit, poll_s)
        finally:
            kill_tree(os.getpid(), spare=before)   # orphans re-parented to us included
        rc_text = ""
        try:
            rc_text = (run_dir / "child.rc").read_text().strip()
        except OSError:
            pass
        outcome.returncode = int(rc_text) if rc_text.lstrip("-").isdigit() else None
        results = None
        res_path = run_dir / "results.json"
        if res_path.exists():
            try:
                results = json.loads(res_path.read_text())
            except json.JSONDecodeError:
                results = None
        outcome.results = results
        outcome.output_tail = _tail(log_path, tail_lines)
        if _wrote_too_much(outcome, disk_limit):
            outcome.disk_exceeded = True
        return outcome
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _wrote_too_much(outcome: ChildOutcome, limit: int) -> bool:
    """A file hit RLIMIT_FSIZE (EFBIG in Python, SIGXFSZ elsewhere) or the total passed the limit."""
    if outcome.disk_exceeded or outcome.bytes_written >= limit:
        return True
    err = (outcome.results or {}).get("error") or {}
    # A program run by --command reports EFBIG in its own output, not in our results.
    text = "\n".join([str(err.get("message", "")), *outcome.output_tail])
    return ("[Errno 27]" in text or "File too large" in text
            or f"killed by signal {int(signal.SIGXFSZ)}" in text
            or outcome.returncode == -int(signal.SIGXFSZ))


def _watch(keeper: subprocess.Popen, t0: float, timeout_s: float, memory_limit_bytes: int,
           disk_limit_bytes: int, poll_s: float) -> ChildOutcome:
    peak = 0
    gpu_peak: int | None = None
    timed_out = memory_exceeded = disk_exceeded = False
    next_gpu = 0.0
    written: dict[int, int] = {}
    try:
        while keeper.poll() is None:
            pids = descendants(keeper.pid)
            rss = tree_rss_bytes(pids)
            peak = max(peak, rss)
            for pid in pids:
                w = write_bytes(pid)
                if w is not None:
                    written[pid] = max(written.get(pid, 0), w)
            now = time.monotonic()
            if now >= next_gpu:
                used = _gpu_memory_bytes(pids)
                if used is not None:
                    gpu_peak = max(gpu_peak or 0, used)
                next_gpu = now + 1.0
            if rss > memory_limit_bytes:
                memory_exceeded = True
            elif sum(written.values()) > disk_limit_bytes:
                disk_exceeded = True
            elif now - t0 > timeout_s:
                timed_out = True
            if timed_out or memory_exceeded or disk_exceeded:
                _stop(keeper, grace_s=2.0 if timed_out else 0.5)
                break
            time.sleep(poll_s)
    finally:  # also on KeyboardInterrupt in the parent
        if keeper.poll() is None:
            _stop(keeper, grace_s=0.5)
        keeper.wait()
    return ChildOutcome(returncode=None, results=None, wall_s=time.monotonic() - t0,
                        peak_rss_bytes=peak, timed_out=timed_out,
                        memory_exceeded=memory_exceeded, disk_exceeded=disk_exceeded,
                        bytes_written=sum(written.values()), gpu_memory_bytes=gpu_peak)


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


def _stop(keeper: subprocess.Popen, grace_s: float) -> None:
    """Ask the child to write what it has (SIGTERM through the keeper), then kill the tree."""
    try:
        keeper.send_signal(signal.SIGTERM)
        keeper.wait(timeout=grace_s + 1.0)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        pass
    kill_tree(keeper.pid, within_s=1.0)
    try:
        keeper.kill()
    except ProcessLookupError:
        pass


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
