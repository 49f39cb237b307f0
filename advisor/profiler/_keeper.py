"""Holds every process of one profiling run, between the advisor and the profiled child.

    python -m advisor.profiler._keeper ADVISOR_PID GRACE_S RUN_DIR -- CHILD_ARGV...

The keeper is a child subreaper (PR_SET_CHILD_SUBREAPER): a process of the script that detaches
(`setsid()`, a double fork) is re-parented to the keeper, not to init, so it stays a descendant
and can be found and killed. The keeper asks the kernel for SIGTERM when the advisor dies
(PR_SET_PDEATHSIG), even by `kill -9`; the child gets SIGKILL when the keeper dies.

When the child exits, every remaining descendant is killed and the child's exit code is written
to RUN_DIR/child.rc. On SIGTERM (the advisor stopping the run, or the advisor gone) the child is
asked to stop (SIGTERM: it writes what it has measured), given GRACE_S seconds, then everything
is killed; if the advisor is gone the keeper also removes RUN_DIR. Linux only; elsewhere the
prctl calls are skipped and the advisor's own process-group kill is the fallback.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from advisor.procfs import kill_tree

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def set_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux ≥ 3.4)."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def set_parent_death_signal(sig: int) -> bool:
    """Have the kernel send `sig` to this process when its parent dies."""
    return _prctl(PR_SET_PDEATHSIG, int(sig))


def _child_preexec(fsize_limit: int | None) -> Any:
    def preexec() -> None:
        set_parent_death_signal(signal.SIGKILL)
        if fsize_limit:
            import resource

            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit, fsize_limit))
    return preexec


def main(argv: list[str]) -> int:
    advisor_pid, grace_s, run_dir = int(argv[0]), float(argv[1]), Path(argv[2])
    fsize = int(argv[3]) or None
    child_argv = argv[argv.index("--") + 1:]
    set_subreaper()
    set_parent_death_signal(signal.SIGTERM)
    stopping: list[int] = []

    def orphaned() -> bool:
        return os.getppid() != advisor_pid

    def on_signal(signum: int, frame: Any) -> None:
        stopping.append(signum)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, on_signal)
    if orphaned():  # the advisor died before the death signal was armed
        shutil.rmtree(run_dir, ignore_errors=True)
        return 1
    with open(run_dir / "output.log", "ab") as log:
        child = subprocess.Popen(child_argv, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True,
                                 preexec_fn=_child_preexec(fsize))
    rc: int | None = None
    term_sent = 0.0
    while rc is None:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            pid, status = 0, 0
        if pid == child.pid:
            rc = os.waitstatus_to_exitcode(status)
            break
        if stopping and not term_sent:
            try:
                child.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            term_sent = time.monotonic()
        if term_sent and time.monotonic() - term_sent > grace_s:
            break
        if pid == 0:
            time.sleep(0.02)
    if rc is None:  # stopped: the child had its grace period
        try:
            os.kill(child.pid, signal.SIGKILL)
            _, status = os.waitpid(child.pid, 0)
            rc = os.waitstatus_to_exitcode(status)
        except (ProcessLookupError, ChildProcessError):
            rc = None
    kill_tree(os.getpid(), within_s=5.0)
    (run_dir / "child.rc").write_text("" if rc is None else str(rc))
    if orphaned():
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
