"""Readers of Linux's /proc shared by the profiler and `advisor trial`: the process tree, a
process's proportional set size and the bytes it wrote; and the killing of a process tree.
Elsewhere every reader returns an empty answer (or None) and the callers say the figure is
unknown.

Memory is the proportional set size (``Pss`` of /proc/PID/smaps_rollup): forked workers share
their parent's pages copy-on-write, and PSS splits each shared page among the processes that map
it, so a sum over a process tree is what the tree really holds (summed RSS counts shared pages
once per process). This is also closest to what a cgroup's memory accounting charges.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Collection
from typing import NamedTuple

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class ProcessRow(NamedTuple):
    pid: int
    ppid: int
    pgrp: int
    state: str           # "R", "S", "Z" (zombie), ...


def process_table() -> list[ProcessRow]:
    """Every process this user can see, from /proc/PID/stat."""
    rows: list[ProcessRow] = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return rows
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                text = fh.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = text[text.rfind(")") + 2:].split()   # the fields after the command name
        if len(fields) >= 3:
            try:
                rows.append(ProcessRow(int(name), int(fields[1]), int(fields[2]), fields[0]))
            except ValueError:
                continue
    return rows


def children_map(rows: list[ProcessRow] | None = None, *, zombies: bool = False) -> dict[int, list[int]]:
    """Parent pid → its children's pids (zombies left out unless asked)."""
    out: dict[int, list[int]] = {}
    for row in process_table() if rows is None else rows:
        if zombies or row.state != "Z":
            out.setdefault(row.ppid, []).append(row.pid)
    return out


def descendants(root: int, tree: dict[int, list[int]] | None = None) -> list[int]:
    """Live descendants of `root` (not `root` itself)."""
    tree = children_map() if tree is None else tree
    out: list[int] = []
    seen: set[int] = set()
    todo = list(tree.get(root, []))
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        out.append(pid)
        todo.extend(tree.get(pid, []))
    return out


def kill_tree(root: int, *, spare: Collection[int] = (), within_s: float = 2.0) -> list[int]:
    """SIGKILL every live descendant of `root` but those in `spare`, again and again until none
    is left or `within_s` seconds have passed, and reap those of them that are this process's
    children (orphans re-parented to it as a subreaper too). No SIGTERM: the callers have given
    the process they started its grace already; what is left is killed. Returns the pids
    still alive at the last look (empty when none is left).

    Only the listed processes are reaped, never any child (``waitpid(-1)``): a child that this
    process waits for elsewhere (a `subprocess.Popen`) keeps its exit status."""
    deadline = time.monotonic() + within_s
    me = os.getpid()
    while True:
        rows = process_table()
        state = {row.pid: row.state for row in rows}
        ours = {row.pid for row in rows if row.ppid == me}
        found = [p for p in descendants(root, children_map(rows, zombies=True)) if p not in spare]
        live = [p for p in found if state.get(p) != "Z"]
        for pid in live:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in found:
            if pid in ours:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
        if not live or time.monotonic() > deadline:
            return live
        time.sleep(0.01)


def pss_bytes(pid: int | str = "self") -> int | None:
    """Proportional set size of `pid` (smaps_rollup), else its RSS (statm), else None."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return None


def write_bytes(pid: int) -> int | None:
    """Bytes `pid` has written to files (storage layer), or None where /proc does not say."""
    try:
        with open(f"/proc/{pid}/io") as fh:
            for line in fh:
                if line.startswith("write_bytes:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None
