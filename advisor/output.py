"""Output plumbing shared by every command: JSON encoding, consoles, atomic file writes.

Machine output (`--json`) is exactly one JSON document on stdout. People's output (rich
tables) goes to stdout when no JSON was asked for, and to stderr when it was; progress bars
and warnings always go to stderr.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console


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


def atomic_write(path: str | Path, data: str | bytes, mode: int | None = None) -> Path:
    """Write `data` to `path` so that readers see the old file or the whole new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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


@dataclass
class CommandResult:
    """What a command returns to the CLI: data for `--json`, a renderer for people, an exit code."""

    data: Any
    render: Callable[[Console], None] | None = None
    exit_code: int = 0
    warnings: list[str] = field(default_factory=list)
