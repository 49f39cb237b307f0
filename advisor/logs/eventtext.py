"""The text side of job event logs: event headers, timestamps, and where a file went wrong.

The bindings give each event's text (`str(event)`, re-formatted with an ISO date even for
logs written without a year); its first line carries the event number, the job id, the time
and a description, read here faster than through ClassAd lookups. Faults (a truncated event,
text that is not a log) are located by byte offset and line for the error message.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

_EPOCH = _dt.datetime(1970, 1, 1)
OLD_DATE = re.compile(r"^\d{3} \([^)]*\) \d\d/\d\d ")
ISO_DATE = re.compile(r"^\d{3} \([^)]*\) \d{4}-\d\d-\d\d")


# FileTransferEvent types (HTCondor's FileTransferEventType; 1 and 4, queueing, are not used)
INPUT_STARTED, INPUT_FINISHED, OUTPUT_STARTED, OUTPUT_FINISHED = 2, 3, 5, 6
# ... and the same, keyed by the first TRANSFER_KEY_CHARS characters of the event's description
TRANSFER_KEY_CHARS = 27
TRANSFER_TYPES = {
    "Started transferring input ": INPUT_STARTED, "Finished transferring input": INPUT_FINISHED,
    "Started transferring output": OUTPUT_STARTED, "Finished transferring outpu": OUTPUT_FINISHED,
}


def header(text: str) -> tuple[int, int, int, str, str] | None:
    """(type, cluster, proc, 'YYYY-MM-DD HH:MM:SS', description) from an event's text."""
    try:
        close = text.index(")", 4)
        cluster_s, proc_s, _sub = text[5:close].split(".")
        stamp = text[close + 2:close + 21]
        rest = close + 21
        if text[rest:rest + 1] == ".":  # sub-second time
            rest = text.index(" ", rest)
        eol = text.find("\n", rest)
        desc = text[rest + 1:eol if eol >= 0 else None]
        if stamp[4] != "-" or stamp[13] != ":":
            return None
        return int(text[:3]), int(cluster_s), int(proc_s), stamp, desc
    except (ValueError, IndexError):
        return None


class Clock:
    """'YYYY-MM-DD HH:MM:SS' → seconds (UTC reading of the log's local time; only differences
    are used). Caches per minute; `next_year()` moves year-less dates past 31 December."""

    def __init__(self) -> None:
        self.year_shift = 0
        self._minutes: dict[str, float] = {}

    def next_year(self) -> None:
        """Read the dates that follow as one year later (a year-less log ran past 31 December)."""
        self.year_shift += 1
        self._minutes.clear()

    def seconds(self, stamp: str) -> float:
        key = stamp[:16]
        base = self._minutes.get(key)
        if base is None:
            base = seconds_of(key + ":00", self.year_shift)
            self._minutes[key] = base
        try:
            return base + int(stamp[17:19])
        except ValueError:
            return seconds_of(stamp, self.year_shift)


def seconds_of(event_time: str, year_shift: int) -> float:
    d = _dt.datetime.fromisoformat(event_time)
    if year_shift:
        try:
            d = d.replace(year=d.year + year_shift)
        except ValueError:  # 29 February in a year without one
            d = d.replace(year=d.year + year_shift, day=28)
    if d.tzinfo is not None:
        return d.timestamp()
    return (d - _EPOCH).total_seconds()


def reader_offset(log: Any) -> int | None:
    """How far into the file the reader got (the pickling state of JobEventLog)."""
    try:
        return int(log.__getstate__()[1])
    except Exception:  # noqa: BLE001 - private detail of the bindings; fall back to None
        return None


def locate_event(path: str, index: int) -> int:
    """Byte offset where event number `index` (0-based) starts: after the index-th `...` line."""
    seen = 0
    pos = 0
    with open(path, "rb") as fh:
        for raw in fh:
            pos += len(raw)
            if raw.rstrip(b"\r\n") == b"...":
                seen += 1
                if seen == index:
                    return pos
    return 0 if index == 0 else pos


def describe_fault(path: str, size: int, offset: int, events: int) -> str:
    if events == 0:
        offset = 0
    with open(path, "rb") as fh:
        head = fh.read(min(offset, 64 * 1024 * 1024))
        line = head.count(b"\n") + 1
        fh.seek(offset)
        rest = fh.read(200)
    snippet = rest.split(b"\n", 1)[0].decode("utf-8", "replace").strip()[:80]
    if events == 0:
        return (f"not an HTCondor job event log (no event could be read; it starts with "
                f"{snippet!r}). Expected lines like '000 (123.000.000) 2025-05-03 04:09:48 Job "
                f"submitted from host: ...'.")
    return (f"truncated or corrupt at byte {offset} of {size} (line {line}, "
            f"near {snippet!r}); {events} events before it were read.")
