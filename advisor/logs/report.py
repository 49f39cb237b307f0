"""Per-job records → the report: per-job dicts, totals across jobs, usage distributions.

The JSON keys follow docs/DESIGN.md §4.2 (`jobs`, `completed`, `evictions`, `holds` with reason codes,
per-job `memory_mb`/`disk_kb` {requested, used, allocated}, `recommendation`); the rest are
additions. Times are hours; memory MB (MiB, as HTCondor writes it), disk KB (KiB).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from advisor.logs.holdcodes import reason_name
from advisor.logs.records import EVENT_NAMES, Hold, JobRecord, ParsedLog, Resource
from advisor.logs.stats import distribution

RESOURCES = ("cpus", "memory_mb", "disk_kb", "gpus", "gpus_memory_mb")


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600.0, 6)


def _resource(res: Resource) -> dict[str, float | int | None]:
    def clean(v: float | None) -> float | int | None:
        if v is None:
            return None
        return int(v) if float(v).is_integer() else round(v, 4)

    return {"requested": clean(res.requested), "allocated": clean(res.allocated),
            "used": clean(res.used)}


def hold_dict(h: Hold) -> dict[str, Any]:
    return {"job": h.job, "code": h.code, "subcode": h.subcode, "reason_name": h.reason_name,
            "reason": h.reason, "category": h.category, "while_running": h.while_running}


def job_dict(job: JobRecord) -> dict[str, Any]:
    gpus = _resource(job.gpus)
    # GpusUsage is GPU-seconds per second summed over the job's GPUs: per-GPU utilization
    # divides by the number of GPUs the job had.
    n_gpus = job.gpus.allocated or job.gpus.requested
    gpus["utilization"] = (round(job.gpus.used / n_gpus, 4)
                           if job.gpus.used is not None and n_gpus else None)
    return {
        "job": job.job,
        "log": job.log,
        "state": job.state,
        "executions": job.executions,
        "evictions": job.evictions,
        "preemptions": job.preemptions,
        "checkpointed_evictions": job.checkpointed_evictions,
        "holds": [hold_dict(h) for h in job.holds],
        "releases": job.releases,
        "aborted": job.aborted,
        "abort_reason": job.abort_reason,
        "disconnections": job.disconnections,
        "reconnections": job.reconnections,
        "reconnect_failures": job.reconnect_failures,
        "shadow_exceptions": job.shadow_exceptions,
        "shadow_message": job.shadow_message,
        "exit_code": job.exit_code,
        "exit_signal": job.exit_signal,
        "wall_hours": _hours(job.wall_seconds),
        "good_hours": _hours(job.good_seconds),
        "runs": [{"hours": _hours(r.seconds), "outcome": r.outcome, "host": r.host}
                 for r in job.runs],
        "transfer_in_hours": _hours(job.transfer_in_s),
        "transfer_out_hours": _hours(job.transfer_out_s),
        "cpus": _resource(job.cpus),
        "memory_mb": _resource(job.memory_mb),
        "disk_kb": _resource(job.disk_kb),
        "gpus": gpus,
        "gpus_memory_mb": _resource(job.gpus_memory_mb),
        "assigned_gpus": job.assigned_gpus,
    }


@dataclass
class Totals:
    """Counts and sums across all jobs of all logs."""

    jobs: int = 0
    states: dict[str, int] = field(default_factory=dict)
    completed: int = 0
    executions: int = 0
    evictions: int = 0
    preemptions: int = 0
    checkpointed_evictions: int = 0
    holds: int = 0
    held_jobs: int = 0
    aborted: int = 0
    disconnections: int = 0
    reconnections: int = 0
    reconnect_failures: int = 0
    shadow_exceptions: int = 0
    exit_codes: dict[str, int] = field(default_factory=dict)
    exit_signals: dict[str, int] = field(default_factory=dict)
    wall_hours: float = 0.0
    good_hours: float = 0.0
    run_outcomes: dict[str, int] = field(default_factory=dict)
    hold_codes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def goodput_fraction(self) -> float | None:
        return self.good_hours / self.wall_hours if self.wall_hours > 0 else None


def totals(jobs: list[JobRecord]) -> Totals:
    t = Totals(jobs=len(jobs))
    states: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    signals: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    hold_codes: Counter[int | None] = Counter()
    hold_example: dict[int | None, str] = {}
    wall = good = 0.0
    for j in jobs:
        states[j.state] += 1
        t.executions += j.executions
        t.evictions += j.evictions
        t.preemptions += j.preemptions
        t.checkpointed_evictions += j.checkpointed_evictions
        t.holds += len(j.holds)
        t.held_jobs += bool(j.holds)
        t.aborted += j.aborted
        t.disconnections += j.disconnections
        t.reconnections += j.reconnections
        t.reconnect_failures += j.reconnect_failures
        t.shadow_exceptions += j.shadow_exceptions
        if j.terminated:
            t.completed += 1
            if j.exit_code is not None:
                codes[str(j.exit_code)] += 1
            if j.exit_signal is not None:
                signals[str(j.exit_signal)] += 1
        for r in j.runs:
            s = r.seconds
            wall += s
            if r.outcome in ("terminated", "checkpointed"):
                good += s
            outcomes[r.outcome] += 1
        for h in j.holds:
            hold_codes[h.code] += 1
            hold_example.setdefault(h.code, h.reason)
    t.states = dict(states)
    t.exit_codes = dict(sorted(codes.items(), key=lambda kv: int(kv[0])))
    t.exit_signals = dict(signals)
    t.run_outcomes = dict(outcomes)
    t.wall_hours = wall / 3600.0
    t.good_hours = good / 3600.0
    t.hold_codes = [{"code": c, "reason_name": reason_name(c), "count": n,
                     "example": hold_example[c]} for c, n in hold_codes.most_common()]
    return t


def usage(jobs: list[JobRecord]) -> dict[str, dict[str, Any]]:
    """Distributions across jobs of requested, allocated and used, per resource."""
    out: dict[str, dict[str, Any]] = {}
    for name in RESOURCES:
        rows = [getattr(j, name) for j in jobs]
        out[name] = {
            "requested": distribution([r.requested for r in rows]),
            "allocated": distribution([r.allocated for r in rows]),
            "used": distribution([r.used for r in rows]),
        }
    util = []
    for j in jobs:
        n = j.gpus.allocated or j.gpus.requested
        if j.gpus.used is not None and n:
            util.append(j.gpus.used / n)
    out["gpus"]["utilization"] = distribution(util)
    return out


def log_dict(p: ParsedLog) -> dict[str, Any]:
    return {
        "path": p.path,
        "bytes": p.bytes,
        "events": p.events,
        "jobs": len(p.jobs),
        "date_format": p.date_format,
        "event_counts": {f"{k:03d} {EVENT_NAMES.get(k, 'other')}": v
                         for k, v in sorted(p.event_counts.items())},
        "span_hours": (_hours(p.last_event_s - p.first_event_s)
                       if p.first_event_s is not None and p.last_event_s is not None else None),
        "error": p.error,
    }
