"""Reading one large job event log with several processes.

The official reader (htcondor2) takes most of the time on a large log, and it reads one event
after another. So a large file is cut at event boundaries (after a `...` line) into chunks;
each worker opens the log with the bindings, starts at its chunk (the documented resume-at-
offset of a pickled `JobEventLog`), reads events until it passes the chunk's end, and sends
back for each event only the fields the analysis uses, as plain values. The parent applies
them in file order, so the records are the same as a sequential read (the tests check that).

Used for files of PARALLEL_MIN_BYTES or more when the machine has more than one CPU; anything
unexpected (no fork, an older htcondor2) falls back to reading in one process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from advisor.logs.parse import ASSIGNED_GPUS, GPUS_MEMORY_USAGE, SLOT_KEYS, TABLE_ROWS
from advisor.logs.records import (
    ABORTED,
    EVICTED,
    EXECUTE,
    FILE_TRANSFER,
    HELD,
    IMAGE_SIZE,
    SHADOW_EXCEPTION,
    TERMINATED,
)

PARALLEL_MIN_BYTES = 32 * 1024 * 1024
MAX_WORKERS = 8

# Fields the analysis reads, per event type (advisor.logs.parse._apply and _take_table).
_TABLE = tuple(name for row in TABLE_ROWS for name in row[:3]) + (GPUS_MEMORY_USAGE, ASSIGNED_GPUS)
FIELDS: dict[int, tuple[str, ...]] = {
    IMAGE_SIZE: ("MemoryUsage", "ResidentSetSize"),
    EXECUTE: ("ExecuteHost", "SlotName"),
    TERMINATED: ("TerminatedNormally", "ReturnValue", "TerminatedBySignal") + _TABLE,
    EVICTED: ("Checkpointed", "TerminatedAndRequeued") + _TABLE,
    HELD: ("HoldReasonCode", "HoldReasonSubCode", "HoldReason"),
    ABORTED: ("Reason",),
    SHADOW_EXCEPTION: ("Message",),
    FILE_TRANSFER: ("Type",),
}
_SLOT = SLOT_KEYS


def choose_workers(size: int, requested: int | None) -> int:
    """How many processes read a file of `size` bytes (1: read it here)."""
    if requested is not None:
        return max(1, int(requested))
    env = os.environ.get("ADVISOR_LOG_WORKERS")
    if env and env.isdigit():
        return max(1, int(env))
    if size < PARALLEL_MIN_BYTES:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpus = cpus or 1
    if cpus < 4:  # the parent applies events while workers read: 2 CPUs gain nothing
        return 1
    return max(1, min(MAX_WORKERS, cpus - 1, size // (PARALLEL_MIN_BYTES // 2)))


def plan_chunks(path: str, size: int, n: int) -> list[tuple[int, int]]:
    """Byte ranges [start, end) that begin at an event (after a `...` line)."""
    cuts = [0]
    with open(path, "rb") as fh:
        for i in range(1, n):
            fh.seek(max(cuts[-1], size * i // n))
            block = fh.read(1 << 20)
            at = block.find(b"\n...\n")
            if at < 0:
                continue
            cut = fh.tell() - len(block) + at + 5
            if cut > cuts[-1] and cut < size:
                cuts.append(cut)
    cuts.append(size)
    return list(zip(cuts[:-1], cuts[1:], strict=True))


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _extract(etype: int, ev: Any, desc: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if etype == FILE_TRANSFER and desc:  # the transfer type is in the description
        return data
    for key in FIELDS.get(etype, ()):
        try:
            data[key] = _plain(ev[key])
        except KeyError:
            pass
    if etype == EXECUTE:
        try:
            props = ev["ExecuteProps"]
        except KeyError:
            props = None
        if props is not None:
            slot = {}
            for key in _SLOT:
                try:
                    slot[key] = _plain(props[key])
                except (KeyError, TypeError):
                    pass
            data["ExecuteProps"] = slot
    return data


def _offset_reader(log: Any) -> Any:
    """A cheap way to ask the reader how far it got (the pickling state as a fallback)."""
    from advisor.logs.eventtext import reader_offset

    try:
        from htcondor2.htcondor2_impl import _job_event_log_get_offset

        handle = log._handle
        _job_event_log_get_offset(log, handle)
        return lambda: _job_event_log_get_offset(log, handle)
    except Exception:  # noqa: BLE001 - private detail of the bindings
        return lambda: reader_offset(log)


@dataclass
class ChunkResult:
    events: list[tuple[int, int, int, str, str, dict[str, Any]]] = field(default_factory=list)
    offset: int = 0
    error: str | None = None


def read_chunk(path: str, start: int, end: int) -> ChunkResult:
    """Events whose text starts in [start, end), as plain tuples (runs in a worker)."""
    import htcondor2

    from advisor.logs.eventtext import header, reader_offset

    log = htcondor2.JobEventLog.__new__(htcondor2.JobEventLog)
    log.__setstate__(({"_deadline": 0, "_filename": path}, start))
    out = ChunkResult(offset=start)
    append = out.events.append
    where = _offset_reader(log)
    try:
        for ev in log.events(stop_after=0):
            head = header(str(ev))
            if head is None:
                head = (ev["EventTypeNumber"], ev["Cluster"], ev.get("Proc", 0),
                        str(ev["EventTime"]).replace("T", " ")[:19], "")
            append(head + (_extract(head[0], ev, head[4]),))
            off = where()
            if off is not None:
                out.offset = off
                if off >= end:
                    break
    except Exception as exc:  # noqa: BLE001 - ULOG_RD_ERROR from the bindings
        out.error = str(exc)
    finally:
        out.offset = reader_offset(log) or out.offset
        try:
            log.close()
        except Exception:  # noqa: BLE001
            pass
    return out


class ChunkedReader:
    """The events of one log, read by worker processes, yielded in file order."""

    def __init__(self, path: str, size: int, workers: int) -> None:
        self.path = path
        self.size = size
        self.workers = workers
        self.offset: int | None = None
        self.unavailable = False  # no worker could run: read the log in this process instead

    def events(self) -> Iterator[tuple[int, int, int, str, str, dict[str, Any]]]:
        chunks = plan_chunks(self.path, self.size, self.workers * 2)
        import multiprocessing

        try:
            ctx = multiprocessing.get_context("fork")
            pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx)
            futures: list[Future[ChunkResult]] = [
                pool.submit(read_chunk, self.path, s, e) for s, e in chunks]
            first = futures[0].result()
        except Exception:  # noqa: BLE001 - no fork, no processes, an older htcondor2
            self.unavailable = True
            return
        with pool:
            for i, ((_start, end), fut) in enumerate(zip(chunks, futures, strict=True)):
                res = first if i == 0 else fut.result()
                yield from res.events
                self.offset = res.offset
                if res.error is not None:
                    for f in futures:
                        f.cancel()
                    raise RuntimeError(res.error)
                if res.offset < end:  # stopped early without an error: unreadable text here
                    for f in futures:
                        f.cancel()
                    return
