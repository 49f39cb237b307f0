"""Output plumbing shared by every command: JSON encoding, consoles, atomic file writes.

Machine output (`--json`) is exactly one JSON document on stdout. People's output (rich
tables) goes to stdout when no JSON was asked for, and to stderr when it was; progress bars
and warnings always go to stderr.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from advisor.errors import InputError


def make_console(stderr: bool = False) -> Console:
    """A rich console; when not a terminal (piped, captured) it is wide enough for our tables."""
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=160)


STDERR = make_console(stderr=True)


def error_line(text: str) -> None:
    """A plain message on stderr (no rich wrapping, so long names stay whole)."""
    sys.stderr.write(text.rstrip("\n") + "\n")
    sys.stderr.flush()


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types from dataclasses, enums, numpy and pandas values, paths. NaN → None."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return to_jsonable(obj.to_dict())
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return to_jsonable(obj.item())
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy arrays
        return to_jsonable(obj.tolist())
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(to_jsonable(obj), indent=2, allow_nan=False)


# Temporary files carry the writer's pid, so that a later run can tell debris left by a killed
# writer (pid gone) from a write in progress: `.NAME.PID.RANDOM.tmp` beside the file, and
# `.advisor-stage-PID-RANDOM` directories for sets of files.
_TMP_RE = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.)?[a-z0-9_]{8}\.tmp$")
STAGE_PREFIX = ".advisor-stage-"
_STAGE_RE = re.compile(r"^\.advisor-stage-(?P<pid>\d+)-[a-z0-9_]{8}$")
_STALE_UNOWNED_S = 600.0        # a temporary without a pid (older advisors): stale after 10 min
MIN_FREE_BYTES = 1 << 20        # an output location with less free space is refused up front


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def clean_stale_temporaries(directory: str | Path, name: str | None = None) -> list[Path]:
    """Remove temporaries in `directory` left by writers that died (kill -9, power loss):
    `.NAME.PID.*.tmp` files and staging directories whose pid is gone. With `name`, only the
    temporaries of that file. Returns what was removed; never raises."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        try:
            m = _TMP_RE.match(entry.name)
            if m and entry.is_file(follow_symlinks=False) and (name is None or m["name"] == name):
                pid = m["pid"]
                if pid:
                    stale = not _pid_alive(int(pid))
                else:  # written by an older advisor: only the named file's, and only old ones
                    stale = name is not None and (
                        now - entry.stat(follow_symlinks=False).st_mtime > _STALE_UNOWNED_S)
                if stale:
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
                continue
            s = _STAGE_RE.match(entry.name)
            if s and entry.is_dir(follow_symlinks=False) and not _pid_alive(int(s["pid"])):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(Path(entry.path))
        except (OSError, ValueError):
            continue
    return removed


def atomic_write(path: str | Path, data: str | bytes, mode: int | None = None) -> Path:
    """Write `data` to `path` so that readers see the old file or the whole new one, never half.

    The temporary file beside it carries this process's pid; temporaries of the same file left
    by a writer that was killed are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(path.parent, path.name)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _probe_writable(directory: Path, option: str, shown: str | Path) -> None:
    """Create and remove a file in `directory`; refuse a read-only or full location."""
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=f".advisor-probe.{os.getpid()}.",
                                     suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
        free = shutil.disk_usage(directory).free
    except OSError as exc:
        raise output_error(option, shown, exc) from None
    if free < MIN_FREE_BYTES:
        raise InputError(option, str(shown), f"cannot be written: its file system has only "
                         f"{free} bytes free.", "free some space, or give a location on "
                         "another file system.")


def check_output_dir(path: str | Path, option: str = "-o") -> Path:
    """Before any expensive work: `path` is (or can be made) a directory we can write in."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(option, str(path), "is an existing file, not a directory.",
                         "give a directory (it is created if missing), or move the file away.")
    base = _nearest_existing(p)
    if not base.is_dir():
        raise InputError(option, str(path), f"cannot be created: {base} is a file, not a "
                         "directory.", "give a path whose parents are directories.")
    _probe_writable(base, option, path)
    return p


def check_output_file(path: str | Path, option: str = "-o") -> Path:
    """Before any expensive work: `path` names a file (not a directory) we can write."""
    p = Path(path)
    if p.is_dir():
        raise InputError(option, str(path), "is a directory, not a file.",
                         f"give a file name, e.g. {p / 'out'}.")
    if str(path).endswith(("/", os.sep)):
        raise InputError(option, str(path), "names a directory, not a file.",
                         "give a file name.")
    base = _nearest_existing(p.parent if str(p.parent) else Path("."))
    if not base.is_dir():
        raise InputError(option, str(path), f"cannot be created: {base} is a file, not a "
                         "directory.", "give a path whose parents are directories.")
    _probe_writable(base, option, path)
    return p


def output_error(option: str, path: str | Path, exc: OSError) -> InputError:
    """The InputError for an output that could not be written (read-only, full, a directory)."""
    why = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        fix = "free some space (or raise the quota), or write somewhere else."
    elif exc.errno in (errno.EISDIR, errno.ENOTDIR, errno.EEXIST):
        fix = "give a path that is not taken by a file or directory of the other kind."
    else:
        fix = "give a location you can write to."
    return InputError(option, str(path), f"cannot be written ({why}).", fix)


@contextmanager
def staged_directory(target: str | Path, *, last: Sequence[str] = ()) -> Iterator[Path]:
    """Write a set of files into a staging directory, then move the set into `target` whole.

    Yields the staging directory. When the block ends normally: a `target` that did not exist
    is the staging directory renamed (one atomic step); into an existing `target` the files
    move one by one, those named in `last` (e.g. the submit file that names the others) at the
    end, so an interruption never leaves a file without the files it names. When the block
    raises (or the process dies), nothing reaches `target`; a later run removes the debris."""
    final = Path(target)
    exists = final.is_dir()
    home = final if exists else final.absolute().parent
    home.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(home)
    stage = Path(tempfile.mkdtemp(dir=home, prefix=f"{STAGE_PREFIX}{os.getpid()}-"))
    try:
        yield stage
        if not exists and not final.exists():
            try:
                os.chmod(stage, 0o755)
                os.rename(stage, final)
                return
            except OSError:
                final.mkdir(parents=True, exist_ok=True)
        names = sorted(os.listdir(stage), key=lambda n: (n in last, last.index(n) if n in last else 0, n))
        for name in names:
            if _TMP_RE.match(name):
                continue
            os.replace(stage / name, final / name)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


@dataclass
class CommandResult:
    """What a command returns to the CLI: data for `--json`, a renderer for people, an exit code."""

    data: Any
    render: Callable[[Console], None] | None = None
    exit_code: int = 0
    warnings: list[str] = field(default_factory=list)
