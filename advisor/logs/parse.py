"""HTCondor job event logs → one record per job, read with the official bindings.

`htcondor2.JobEventLog(path).events(stop_after=0)` does the parsing; this module turns its
events into `JobRecord`s: runs (executions) and how each ended, evictions, holds, aborts,
disconnections, exit codes, wall time and good time, and the resources table of the terminate
event (request, allocated, usage) plus the peaks of the image-size (006) events.

What the bindings give back (checked on the logs in ../shared/data/htcondor-logs):
* 005: `RequestXxx` is the Request column, `Xxx` the Allocated column, `XxxUsage` the Usage
  column, for Cpus, Disk (KB), Memory (MB), Gpus (usage: GPU-seconds per second, i.e. summed
  over the assigned GPUs), `GpusMemoryUsage` (MB), `AssignedGpus`.
* 004: never the resources table (the reader skips it): memory falls back to the 006 events.
* 001: `ExecuteHost`, and in current versions `SlotName` and `ExecuteProps` (the slot's
  Cpus/Disk/Memory/GPUs), used as the allocated values when no terminate event says otherwise.
* Dates without a year (old logs) get the current year from the parser: only differences are
  used, and a year is added when such a log wraps past 31 December.

Every event goes through one loop (`_consume`) and one update per event type (`_apply`),
whether this process reads the file (`_event_stream`: the type and job id come from the event's
text, each parsed once) or worker processes do (`advisor.logs.parallel`). The names of the
ClassAd attributes read are constants below (the event numbers are in `advisor.logs.records`).

The bindings stop silently at a truncated or garbled event; the offset they reached is compared
with the file size so that such a log is reported as an error, with what came before it kept.
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from advisor.logs.eventtext import (
    INPUT_FINISHED,
    INPUT_STARTED,
    ISO_DATE,
    OLD_DATE,
    OUTPUT_FINISHED,
    OUTPUT_STARTED,
    TRANSFER_KEY_CHARS,
    TRANSFER_TYPES,
    Clock,
    describe_fault,
    header,
    locate_event,
    reader_offset,
)
from advisor.logs.holdcodes import hold_category, reason_name
from advisor.logs.records import (  # noqa: F401  (re-exported: the record types live there)
    ABORTED,
    DISCONNECTED,
    EVENT_NAMES,
    EVICTED,
    EVICTION_CAUSE_WINDOW_S,
    EXECUTE,
    FILE_TRANSFER,
    HELD,
    IMAGE_SIZE,
    RECONNECT_FAILED,
    RECONNECTED,
    RELEASED,
    SHADOW_EXCEPTION,
    SUBMIT,
    TERMINATED,
    Hold,
    JobRecord,
    ParsedLog,
    Resource,
    Run,
)

_ALIAS = re.compile(r"alias=([^&>]+)")
_HOST = re.compile(r"<([^:>?]+)")

KB_PER_MB = 1024.0  # 006's ResidentSetSize is in KB, MemoryUsage in MB
# A year-less (old format) date this much earlier than the latest one: the log ran past
# 31 December (a log spans far less than half a year; out-of-order events, much less).
YEAR_WRAP_S = 180 * 86400.0
# A hold this soon after the end of the job's last run is counted as a hold while running.
HOLD_WHILE_RUNNING_S = 60.0


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _host(execute_host: str | None, slot_name: str | None) -> str | None:
    if slot_name:
        return slot_name
    if not execute_host:
        return None
    m = _ALIAS.search(execute_host) or _HOST.search(execute_host)
    return m.group(1) if m else execute_host


def _peak(res: Resource, value: Any) -> None:
    v = _num(value)
    if v is not None and (res.used is None or v > res.used):
        res.used = v


class TableRow(NamedTuple):
    """One row of the terminate event's resources table, as the bindings name its cells."""

    request: str
    allocated: str
    usage: str
    usage_is_peak: bool  # memory and disk: the peak; CPUs and GPUs: the lifetime average


TABLE_ROWS = (TableRow("RequestCpus", "Cpus", "CpusUsage", False),
              TableRow("RequestMemory", "Memory", "MemoryUsage", True),
              TableRow("RequestDisk", "Disk", "DiskUsage", True),
              TableRow("RequestGpus", "Gpus", "GpusUsage", False))
GPUS_MEMORY_USAGE = "GpusMemoryUsage"  # MB, the peak
ASSIGNED_GPUS = "AssignedGpus"
TABLE_NAMES = frozenset([name for row in TABLE_ROWS for name in row[:3]]
                        + [GPUS_MEMORY_USAGE, ASSIGNED_GPUS])
# The slot's resources in a current-version execute event's ExecuteProps (names ignore case)
SLOT_KEYS = ("Cpus", "Memory", "Disk", "GPUs")


def _value(ev: Any, key: str) -> Any:
    """`ev.get(key)` for a JobEvent or a dict, without the Mapping.get layer."""
    try:
        return ev[key]
    except KeyError:
        return None


def _float_at(ev: Any, key: str) -> float | None:
    """`ev[key]` as a float; None when absent or not a number (the 005 table's cells)."""
    try:
        x = ev[key]
    except KeyError:
        return None
    return float(x) if type(x) is int or type(x) is float else _num(x)


def _take_table(job: JobRecord, ev: Any) -> None:
    """The `Partitionable Resources` table of a 005 (or 004, where the reader keeps it)."""
    for res, (req_key, alloc_key, used_key, peak) in zip(
            (job.cpus, job.memory_mb, job.disk_kb, job.gpus), TABLE_ROWS, strict=True):
        req = _float_at(ev, req_key)
        if req is not None:
            res.requested = req
        alloc = _float_at(ev, alloc_key)
        if alloc is not None:
            res.allocated = alloc
        v = _float_at(ev, used_key)
        if v is not None and (not peak or res.used is None or v > res.used):
            res.used = v
    gm = _value(ev, GPUS_MEMORY_USAGE)
    if gm is not None:
        _peak(job.gpus_memory_mb, gm)
    assigned = _value(ev, ASSIGNED_GPUS)
    if assigned:
        job.assigned_gpus = str(assigned)


def _take_slot(job: JobRecord, props: Any) -> None:
    """Allocated values from the slot ad of a current-version 001 event."""
    if props is None:
        return
    for res, key in zip((job.cpus, job.memory_mb, job.disk_kb, job.gpus), SLOT_KEYS, strict=True):
        try:
            v = _num(props[key])  # ClassAd names ignore case
        except (KeyError, TypeError):
            continue
        if v is not None:
            res.allocated = v


def _close_run(job: JobRecord, t: float, outcome: str) -> None:
    run = job.open_run
    if run is not None:
        run.end_s = t
        run.outcome = outcome


def _cause_of_eviction(job: JobRecord, t: float) -> None:
    """A removal or hold right after an eviction (no run between) caused that eviction."""
    if job._evicted_at is not None and t - job._evicted_at <= EVICTION_CAUSE_WINDOW_S:
        job.preemptions -= 1
        if job.runs and job.runs[-1].outcome == "evicted":
            job.runs[-1].outcome = "evicted_by_user_or_policy"
    job._evicted_at = None


def parse_log(path: str | Path, workers: int | None = None) -> ParsedLog:
    """Read one job event log. A fault is recorded in `.error`; what came before it is kept.

    `workers`: processes reading a large log in parallel (advisor.logs.parallel); None chooses
    from the file size and the CPUs, 1 reads it in this process.
    """
    import htcondor2  # imported here: loading the bindings takes a moment

    p = str(path)
    size = os.path.getsize(p)
    out = ParsedLog(path=p, jobs={}, bytes=size)
    with open(p, "rb") as fh:
        first_line = fh.readline(256).decode("utf-8", "replace")
    # The bindings rewrite dates as ISO, so the file's own first line tells the format.
    old_format = bool(OLD_DATE.match(first_line))
    if old_format:
        out.date_format = "MM/DD (no year)"
    elif ISO_DATE.match(first_line):
        out.date_format = "iso"

    from advisor.logs import parallel

    n_workers = parallel.choose_workers(size, workers)
    reader = parallel.ChunkedReader(p, size, n_workers) if n_workers > 1 else None
    if reader is not None:
        _consume(out, reader.events(), old_format)
        offset = reader.offset
        if reader.unavailable:
            reader = None
            out.jobs.clear()
            out.error = None
    if reader is None:
        log = htcondor2.JobEventLog(p)
        _consume(out, log.events(stop_after=0), old_format)
        # The offset must be read while the reader is open (after close() the handle is gone).
        offset = reader_offset(log)
        try:
            log.close()
        except Exception:  # noqa: BLE001
            pass
    n = out.events
    if out.error is not None:
        out.error += describe_fault(p, size, locate_event(p, n), n)
    elif n == 0 and size == 0:
        out.error = "empty file: no events (a job event log starts with a 000 submit event)."
    elif offset is not None and offset < size:
        with open(p, "rb") as fh:
            fh.seek(offset)
            rest = fh.read()
        if rest.strip():
            out.error = describe_fault(p, size, offset, n)
    elif n == 0:
        out.error = describe_fault(p, size, 0, 0)
    return out


MAX_NAMED_JOBS = 10  # jobs named in one warning; the rest are counted


def _named(jobs: list[str]) -> str:
    more = len(jobs) - MAX_NAMED_JOBS
    return ", ".join(jobs[:MAX_NAMED_JOBS]) + (f" and {more} more" if more > 0 else "")


def _note_oddities(out: ParsedLog, backwards: dict[str, tuple[float, float]]) -> None:
    """Warnings for what reads but cannot be right: a job whose events go back in time (its
    wall and good time cannot be trusted) and impossible job ids (a cluster id below 1 or a
    negative proc: a corrupt log, or an id past 2^31 that wrapped)."""
    if backwards:
        first = next(iter(backwards.items()))
        job, (prev, t) = first
        out.warnings.append(
            f"events out of order for job(s) {_named(list(backwards))}: an event of job {job} "
            f"is {prev - t:,.0f} s earlier than the one before it. Their run, wall and good "
            "times are not reliable; check the log (was it concatenated or edited?).")
    bad_ids = [j.job for j in out.jobs.values() if j.cluster < 1 or j.proc < 0]
    if bad_ids:
        out.warnings.append(
            f"impossible job id(s) {_named(bad_ids)}: HTCondor cluster ids start at 1 and proc "
            "ids at 0. The log is corrupt (or an id wrapped past 2^31); those jobs' numbers "
            "are not reliable.")


Event = tuple[int, int, int, str, str, Any]  # type, cluster, proc, 'YYYY-MM-DD HH:MM:SS', text


def _consume(out: ParsedLog, events: Iterator[Any], old_format: bool) -> None:
    """Apply the events in order to per-job records; stop at the first unreadable one.

    `events` are the bindings' JobEvents, or `Event` tuples from worker processes (already
    read: `advisor.logs.parallel`). A JobEvent's type, job and time come from its own text
    (`str(ev)`, written by the bindings with an ISO date), faster than four ClassAd look-ups:
    its type code and job id are parsed the first time each is seen (`header`) and found by
    dictionary look-ups on their slices of the text after that. An event whose text does not
    have the usual header is read through its ClassAd.
    """
    jobs = out.jobs
    counts: dict[int, int] = {}
    p = out.path
    clock = Clock()
    codes: dict[str, int] = {}  # '005' -> 5
    idents: dict[str, JobRecord] = {}  # '123.004.000' -> its record
    last_t: float | None = None
    backwards: dict[str, tuple[float, float]] = {}  # job → (its previous time, the earlier one)
    n = 0
    gc_was_enabled = gc.isenabled()
    gc.disable()  # many small records and no cycles: collections would only cost time
    try:
        for ev in events:
            n += 1
            text = ""
            job: JobRecord | None = None
            if type(ev) is tuple:  # read by a worker process
                etype, cluster, proc, stamp, desc, ev = ev
            else:
                text = str(ev)
                close = text.find(")", 4)
                etype = codes.get(text[:3])
                job = idents.get(text[5:close]) if close >= 0 else None
                stamp = text[close + 2:close + 21]
                rest = close + 21
                if text[rest:rest + 1] == ".":  # sub-second time
                    rest = text.find(" ", rest)
                if (etype is not None and job is not None and rest >= 0
                        and stamp[4:5] == "-" and stamp[13:14] == ":"):
                    desc = ""  # only a transfer's description is read (`_apply`)
                    if etype == FILE_TRANSFER:
                        eol = text.find("\n", rest)
                        desc = text[rest + 1:eol if eol >= 0 else None]
                else:  # first sight of this type or job, or an unusual header
                    job = None
                    head = header(text)
                    if head is None:
                        text = ""
                        etype, cluster, proc = ev["EventTypeNumber"], ev["Cluster"], ev.get("Proc", 0)
                        stamp = str(ev["EventTime"]).replace("T", " ")[:19]
                        desc = ""
                    else:
                        etype, cluster, proc, stamp, desc = head
            counts[etype] = counts.get(etype, 0) + 1
            t = clock.seconds(stamp)
            if old_format and last_t is not None and t < last_t - YEAR_WRAP_S:
                clock.next_year()  # the log ran past 31 December
                t = clock.seconds(stamp)
            if last_t is None:
                out.first_event_s = last_t = t
            elif t > last_t:
                last_t = t
            if job is None:
                key = (cluster, proc)
                job = jobs.get(key)
                if job is None:
                    job = JobRecord(job=f"{cluster}.{proc}", cluster=cluster, proc=proc, log=p)
                    jobs[key] = job
                if text:  # its header read: the next events of this type and job go faster
                    codes[text[:3]] = etype
                    idents[text[5:text.find(")", 4)]] = job
            if job.last_event_s is not None and t < job.last_event_s:
                backwards.setdefault(job.job, (job.last_event_s, t))
            job.last_event_s = t
            _apply(job, etype, ev, t, desc)
    except Exception as exc:  # noqa: BLE001 - the bindings raise HTCondorException (ULOG_RD_ERROR)
        out.error = f"unreadable event ({exc}): "
    finally:
        if gc_was_enabled:
            gc.enable()
    out.events = n
    out.event_counts = counts
    out.last_event_s = last_t
    _note_oddities(out, backwards)


def _apply(job: JobRecord, etype: int, ev: Any, t: float, desc: str = "") -> None:  # noqa: C901
    """Update one job with one event (one branch per event type, most frequent first)."""
    if etype == FILE_TRANSFER:
        kind = TRANSFER_TYPES.get(desc[:TRANSFER_KEY_CHARS])
        if kind is None and not desc:
            kind = ev.get("Type")
        if kind == INPUT_STARTED or kind == OUTPUT_STARTED:
            job._transfer_started = t
        elif kind == INPUT_FINISHED or kind == OUTPUT_FINISHED:
            started = job._transfer_started
            if started is not None:
                if kind == INPUT_FINISHED:
                    job.transfer_in_s += t - started
                else:
                    job.transfer_out_s += t - started
                job._transfer_started = None
    elif etype == IMAGE_SIZE:
        try:
            mem = ev["MemoryUsage"]
        except KeyError:
            rss = _num(ev.get("ResidentSetSize"))
            mem = None if rss is None else rss / KB_PER_MB
        v = float(mem) if type(mem) is int else _num(mem)
        if v is not None:
            res = job.memory_mb
            if res.used is None or v > res.used:
                res.used = v
    elif etype == EXECUTE:
        if job.open_run is not None:  # a run that ended without an event saying so
            _close_run(job, t, "superseded")
        job._evicted_at = None
        slot_name = _value(ev, "SlotName")
        host = slot_name if slot_name else _host(_value(ev, "ExecuteHost"), None)
        job.runs.append(Run(start_s=t, host=host))
        _take_slot(job, _value(ev, "ExecuteProps"))
    elif etype == TERMINATED:
        _close_run(job, t, "terminated")
        job._evicted_at = None
        job.terminated = True
        if ev.get("TerminatedNormally", True):
            rv = ev.get("ReturnValue")
            job.exit_code = None if rv is None else int(rv)
        else:
            sig = ev.get("TerminatedBySignal")
            job.exit_signal = None if sig is None else int(sig)
        _take_table(job, ev)
    elif etype == EVICTED:
        job.evictions += 1
        if ev.get("Checkpointed", False):
            outcome = "checkpointed"
            job.checkpointed_evictions += 1
        elif ev.get("TerminatedAndRequeued", False):
            outcome = "requeued"
        else:
            outcome = "evicted"
        _close_run(job, t, outcome)
        if outcome != "requeued":
            job.preemptions += 1
            job._evicted_at = t
        # The reader usually keeps no table for a 004: skip a dozen failing look-ups.
        if not TABLE_NAMES.isdisjoint(ev):
            _take_table(job, ev)
    elif etype == SUBMIT:
        if job.submitted_s is None:
            job.submitted_s = t
    elif etype == HELD:
        code = ev.get("HoldReasonCode")
        sub = ev.get("HoldReasonSubCode")
        reason = str(ev.get("HoldReason", "") or "")
        last = job.runs[-1] if job.runs else None
        running = last is not None and (last.end_s is None or t - last.end_s <= HOLD_WHILE_RUNNING_S)
        job.holds.append(Hold(
            job=job.job, code=None if code is None else int(code),
            subcode=None if sub is None else int(sub),
            reason_name=reason_name(None if code is None else int(code)), reason=reason,
            category=hold_category(None if code is None else int(code), reason),
            time_s=t, while_running=running))
        _close_run(job, t, "held")
        _cause_of_eviction(job, t)
    elif etype == RELEASED:
        job.releases += 1
    elif etype == ABORTED:
        job.aborted = True
        job.abort_reason = str(ev.get("Reason", "") or "") or None
        _close_run(job, t, "aborted")
        _cause_of_eviction(job, t)
    elif etype == SHADOW_EXCEPTION:
        job.shadow_exceptions += 1
        job.shadow_message = str(ev.get("Message", "") or "") or None
        _close_run(job, t, "shadow_exception")
    elif etype == DISCONNECTED:
        job.disconnections += 1
    elif etype == RECONNECTED:
        job.reconnections += 1
    elif etype == RECONNECT_FAILED:
        job.reconnect_failures += 1
        _close_run(job, t, "reconnect_failed")
