"""Runs inside the child process: installs the measuring hooks, then runs the user's script.

    python -m advisor.profiler._child CONFIG.json

CONFIG names the mode. ``torch``: the script runs unmodified as ``__main__`` with its own argv;
global optimizer step hooks mark step boundaries; after the warm-up, one step is counted
(FLOPs, bytes, kernels, live tensor bytes) with a dispatch mode and the next N steps are timed
with the dispatch mode off; then the script is stopped by a private BaseException. ``command``:
the command runs to completion and its rusage and I/O counters are read after reaping it.

Results go to ``results.json`` in the run directory (atomically; also on failure, with what was
measured so far). Nothing from the environment is recorded.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

# Paths whose reads are the interpreter's or a library's, not the user's data.
_SKIP_SUFFIXES = (".py", ".pyc", ".so", ".pth", ".pyi", ".typed")
_SKIP_PREFIXES = ("/proc", "/sys", "/dev", "/etc", "/usr", "/lib", "/lib64", "/bin", "/sbin",
                  "/var/lib", "/run")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


class _FileWatch:
    """Records which files and directories the script reads (audit hook), for the data size."""

    def __init__(self, run_dir: Path, script: Path) -> None:
        self.main_pid = os.getpid()
        self.on = False
        self.reads: set[str] = set()
        self.listed: set[str] = set()
        self.run_dir = run_dir
        self._worker_dirs: set[str] = set()
        self._worker_fh: Any = None
        self._busy = False
        skip = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(run_dir),
                str(Path(__file__).resolve().parents[1])}
        skip.update(p for p in sys.path if "site-packages" in p or "dist-packages" in p)
        self.skip = tuple(s.rstrip("/") + "/" for s in skip if s) + tuple(
            p + "/" for p in _SKIP_PREFIXES)
        self.script = str(script)

    def import_dirs(self) -> set[str]:
        return {os.path.abspath(p or ".") for p in sys.path}

    def _wanted(self, path: Any, kind: str) -> str | None:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str) or not path:
            return None
        full = os.path.abspath(path)
        if kind == "list" and (full in self.import_dirs() or full == os.getcwd()):
            return None  # the import system scanning sys.path
        if full == self.script or full.endswith(_SKIP_SUFFIXES) or "/." in full:
            return None
        if full.startswith(self.skip):
            return None
        return full

    def hook(self, event: str, args: tuple) -> None:
        if not self.on or self._busy:
            return
        if event == "open":
            path, mode, flags = args
            if mode and any(c in mode for c in "wax+"):
                return
            if flags and flags & (os.O_WRONLY | os.O_RDWR):
                return
            kind = "read"
        elif event in ("os.listdir", "os.scandir"):
            path, kind = args[0] if args else ".", "list"
        elif event == "glob.glob":
            path, kind = os.path.dirname(str(args[0])) or ".", "list"
        else:
            return
        self._busy = True
        try:
            full = self._wanted(path, kind)
            if full is None:
                return
            if os.getpid() != self.main_pid:  # a DataLoader worker: tell the parent via a file
                d = full if kind == "list" else os.path.dirname(full)
                if d not in self._worker_dirs and len(self._worker_dirs) < 1000:
                    self._worker_dirs.add(d)
                    if self._worker_fh is None:
                        self._worker_fh = open(self.run_dir / f"worker-reads.{os.getpid()}", "a")
                    self._worker_fh.write(d + "\n")
                    self._worker_fh.flush()
            elif kind == "list":
                if len(self.listed) < 10000:
                    self.listed.add(full)
            elif len(self.reads) < 10000:
                self.reads.add(full)
        except Exception:  # an audit hook must never break the script
            pass
        finally:
            self._busy = False

    def worker_dirs(self) -> set[str]:
        found: set[str] = set()
        for f in self.run_dir.glob("worker-reads.*"):
            try:
                found.update(x for x in f.read_text().splitlines() if x)
            except OSError:
                pass
        return found


def _run_torch(cfg: dict, run_dir: Path) -> int:
    import runpy

    import torch  # noqa: F401  (imported before the script so the hooks can be installed)

    from advisor.profiler._hooks import Recorder, StopProfiling

    script = Path(cfg["script"]).resolve()
    watch = _FileWatch(run_dir, script)
    sys.addaudithook(watch.hook)
    rec = Recorder(cfg, run_dir, watch)
    rec.device_cpu_name = _cpu_name()

    def on_term(signum: int, frame: Any) -> None:
        if os.getpid() != watch.main_pid:
            os._exit(128 + signum)
        rec.fail("terminated", f"stopped by the advisor (signal {signum})", None, light=True)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    rec.install()
    sys.argv = [cfg["script"], *cfg["args"]]
    sys.path.insert(0, str(script.parent))
    watch.on = True
    code = 0
    try:
        runpy.run_path(str(script), run_name="__main__")
        rec.finish_early("the script ended")
    except StopProfiling:
        pass
    except SystemExit as exc:
        status = exc.code
        if status in (None, 0):
            rec.finish_early("the script exited")
        else:
            rec.fail("SystemExit", f"the script called sys.exit({status!r})", exc)
            code = 1
    except BaseException as exc:  # noqa: BLE001  (the user's error, reported, not raised)
        if isinstance(exc, KeyboardInterrupt):
            rec.fail("KeyboardInterrupt", "interrupted", exc)
        elif isinstance(exc, MemoryError):
            rec.fail("MemoryError", str(exc) or "out of memory", exc)
        else:
            rec.fail(type(exc).__name__, str(exc), exc)
        code = 1
    watch.on = False
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the script's atexit handlers and non-daemon threads; the parent reaps the group.
    os._exit(code)


def _run_command(cfg: dict, run_dir: Path) -> int:
    import resource
    import subprocess

    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(cfg["command"], stdin=subprocess.DEVNULL)
    except OSError as exc:
        _write_json(run_dir / "results.json", {"complete": False, "error": {
            "type": type(exc).__name__, "message": str(exc), "location": None,
            "traceback": []}})
        return 1

    def on_term(signum: int, frame: Any) -> None:
        proc.kill()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    io: dict[str, int] = {}
    try:
        with open("/proc/self/io") as fh:  # includes the reaped command and its reaped children
            for line in fh:
                k, v = line.split(":")
                io[k.strip()] = int(v)
    except OSError:
        pass
    rc = os.waitstatus_to_exitcode(status)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    task = {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_bytes": max(usage.ru_maxrss, children.ru_maxrss) * 1024,
        "bytes_written": io.get("wchar"),  # through write calls: files, pipes, stdout
        "storage_bytes_written": io.get("write_bytes"),  # reached the block layer (not tmpfs)
        "bytes_read": io.get("rchar"),
        "exit_code": rc,
    }
    result: dict[str, Any] = {"complete": rc == 0, "task": task, "cpu_name": _cpu_name()}
    if rc != 0:
        how = f"killed by signal {-rc}" if rc < 0 else f"exited with status {rc}"
        result["error"] = {"type": "CommandFailed", "message": f"the command {how}",
                           "location": None, "traceback": []}
    _write_json(run_dir / "results.json", result)
    return 0 if rc == 0 else 1


def main(argv: list[str]) -> int:
    cfg_path = Path(argv[0])
    cfg = json.loads(cfg_path.read_text())
    run_dir = cfg_path.parent
    if cfg["mode"] == "command":
        return _run_command(cfg, run_dir)
    try:
        return _run_torch(cfg, run_dir)
    except Exception as exc:  # the advisor's own failure inside the child
        _write_json(run_dir / "results.json", {"complete": False, "error": {
            "type": "AdvisorError", "message": f"{type(exc).__name__}: {exc}",
            "location": None, "traceback": traceback.format_exc().splitlines()[-15:]}})
        return 3


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
