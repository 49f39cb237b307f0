"""The size of a directory tree on disk, measured safely on trees that a script or a job wrote.

One walk serves the profiler (how big the data a script read is) and `advisor trial` (the
sandbox against request_disk, the inputs' size, the newest checkpoint file). The trees may be
hostile, so the walk
- follows the path it is given (a link the caller names is what the caller means) but no
  symbolic link below it: a link counts as itself, never as its target, so nothing outside the
  tree is counted and no loop is possible;
- counts each name's apparent size (``st_size``, as ``ls -l`` shows it): a hard link counts once
  per name, as a file transfer copies each name in full;
- skips what it cannot read (a folder without permission, an entry removed while walking);
- stops after `MAX_ENTRIES` entries or `MAX_SECONDS` seconds and then says it is not complete:
  its figures are a lower bound.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

MAX_ENTRIES = 1_000_000   # files, folders and links looked at, at the most, in one walk
MAX_SECONDS = 10.0        # time one walk may take, at the most
_CLOCK_EVERY = 256        # entries between two looks at the clock


class TreeSize(NamedTuple):
    bytes: int
    files: int            # entries that are not folders (files, links, ...)
    complete: bool        # False: a limit stopped the walk, the figures are a lower bound


class Walk:
    """The entries below the folder `root` (not `root` itself), as (path, lstat) pairs.

    After iterating, `complete` is False where a limit stopped the walk."""

    def __init__(self, root: str | Path, *, max_entries: int = MAX_ENTRIES,
                 max_seconds: float = MAX_SECONDS) -> None:
        self.root = os.fspath(root)
        self.max_entries = max_entries
        self.max_seconds = max_seconds
        self.complete = True

    def __iter__(self) -> Iterator[tuple[str, os.stat_result]]:
        deadline = time.monotonic() + self.max_seconds
        seen = 0
        folders = [self.root]
        while folders:
            try:
                with os.scandir(folders.pop()) as entries:
                    for entry in entries:
                        seen += 1
                        if seen > self.max_entries or (
                                seen % _CLOCK_EVERY == 0 and time.monotonic() > deadline):
                            self.complete = False
                            return
                        try:
                            st = entry.stat(follow_symlinks=False)
                        except OSError:
                            continue
                        if stat.S_ISDIR(st.st_mode):
                            folders.append(entry.path)
                        yield entry.path, st
            except OSError:   # a folder that cannot be read, or went away
                continue


def tree_size(path: str | Path, *, max_entries: int = MAX_ENTRIES,
              max_seconds: float = MAX_SECONDS) -> TreeSize:
    """Bytes and files of a file or a folder tree (zero for a path that cannot be read)."""
    try:
        st = os.stat(path)
    except OSError:
        return TreeSize(0, 0, True)
    if not stat.S_ISDIR(st.st_mode):
        return TreeSize(st.st_size, 1, True)
    walk = Walk(path, max_entries=max_entries, max_seconds=max_seconds)
    total = files = 0
    for _, entry in walk:
        if not stat.S_ISDIR(entry.st_mode):
            total += entry.st_size
            files += 1
    return TreeSize(total, files, walk.complete)


def tree_bytes(path: str | Path) -> int:
    """Bytes of a file or a folder tree, as `tree_size` counts them."""
    return tree_size(path).bytes


def newest_mtime(folder: str | Path) -> float | None:
    """The latest modification time of anything below `folder` (None when it holds nothing)."""
    return max((st.st_mtime for _, st in Walk(folder)), default=None)
