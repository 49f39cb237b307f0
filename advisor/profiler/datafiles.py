"""Which data directory or file a script read, and how big it is.

The child records, through an audit hook, the files the script opened for reading and the
directories it listed (DataLoader workers report the directories they read from). The data
source is, in order of preference: a path the user passed as an argument that holds what was
read; else the common directory of the listed directories and the files read in them; else the
largest file read. Paths inside the working directory are written relative to it, others only
as the user passed them (home directories are shown as ``~``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from advisor.fstree import tree_size


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _display(path: str, cwd: str, given: dict[str, str]) -> str:
    if path in given:
        return given[path]
    if _under(path, cwd):
        return os.path.relpath(path, cwd)
    home = os.path.expanduser("~")
    if home not in ("/", "") and _under(path, home):
        return "~/" + os.path.relpath(path, home)
    return path


def data_source(seen: dict[str, Any] | None, args: list[str], cwd: str) -> dict[str, Any] | None:
    """{"path", "bytes", "files"} of the data the script read, or None when nothing was seen."""
    if not seen:
        return None
    reads = [r for r in seen.get("reads", []) if os.path.exists(r)]
    listed = [d for d in seen.get("listed", []) + seen.get("worker_dirs", []) if os.path.isdir(d)]
    touched = reads + listed
    if not touched:
        return None
    # Paths the user gave (also `--flag=value`), resolved against the working directory.
    given: dict[str, str] = {}
    for arg in args:
        value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
        if value.startswith("-") or not value:
            continue
        full = os.path.abspath(os.path.join(cwd, os.path.expanduser(value)))
        if os.path.exists(full) and full != "/":
            given[full] = value
    chosen: str | None = None
    for full in sorted(given, key=len, reverse=True):
        if any(_under(t, full) for t in touched):
            chosen = full
            break
    if chosen is None and listed:
        inside = [r for r in reads if any(_under(r, d) for d in listed)]
        chosen = os.path.commonpath(listed + [os.path.dirname(r) for r in inside])
    if chosen is None:
        chosen = max(reads, key=lambda r: os.path.getsize(r) if os.path.isfile(r) else 0)
    if chosen in ("/", str(Path.home())):
        return None
    size = tree_size(chosen)   # a lower bound on a tree too large to walk in full
    return {"path": _display(chosen, cwd, given), "bytes": size.bytes, "files": size.files}
