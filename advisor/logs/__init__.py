"""HTCondor job event logs: what the jobs really used, what to request next time, and the
measured eviction behaviour for the simulator.

    from advisor.logs import analyze_logs
    report = analyze_logs(["job.log"], headroom=0.2)
    report.to_dict()          # the JSON of `advisor logs --json` (docs/DESIGN.md §4.2)
    report.calibration.to_yaml()

Modules: `parse` (htcondor2 events → per-job records), `report` (per-job dicts and totals),
`recommend` (findings and right-sized requests), `calibrate` (eviction rate with its exact
interval, run-time distribution, scenario fragment), `holdcodes` (hold reason names),
`stats` (quantiles, chi-square), `eventtext` (event headers, timestamps, fault location),
`parallel` (one large log read by several processes), `generate` (synthetic logs for tests
and benchmarks), `slots` (owners' busy fraction from condor_status snapshots), `snapshots`
(reading those snapshots).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advisor.errors import InputError
from advisor.logs.calibrate import Calibration, calibrate, write_fragment
from advisor.logs.parse import JobRecord, ParsedLog, parse_log
from advisor.logs.recommend import recommend
from advisor.logs.report import Totals, hold_dict, job_dict, log_dict, totals, usage

SCHEMA = "advisor.logs/1"


@dataclass
class LogReport:
    """Everything `advisor logs` says about a set of logs."""

    logs: list[ParsedLog]
    jobs: list[JobRecord]
    totals: Totals
    usage: dict[str, Any]
    recommendation: dict[str, Any]
    calibration: Calibration
    headroom: float
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        """True when a log could not be read to its end: the report covers what came before."""
        return bool(self.errors)

    def to_dict(self) -> dict[str, Any]:
        t = self.totals
        return {
            "schema": SCHEMA,
            "partial": self.partial,
            "errors": self.errors,
            "logs": [log_dict(p) for p in self.logs],
            "jobs": [job_dict(j) for j in self.jobs],
            "jobs_total": t.jobs,
            "states": t.states,
            "completed": t.completed,
            "executions": t.executions,
            "evictions": t.evictions,
            "preemptions": t.preemptions,
            "checkpointed_evictions": t.checkpointed_evictions,
            "holds": [hold_dict(h) for j in self.jobs for h in j.holds],
            "hold_codes": t.hold_codes,
            "held_jobs": t.held_jobs,
            "aborted": t.aborted,
            "disconnections": t.disconnections,
            "reconnections": t.reconnections,
            "reconnect_failures": t.reconnect_failures,
            "shadow_exceptions": t.shadow_exceptions,
            "exit_codes": t.exit_codes,
            "exit_signals": t.exit_signals,
            "run_outcomes": t.run_outcomes,
            "wall_hours": t.wall_hours,
            "good_hours": t.good_hours,
            "goodput_fraction": t.goodput_fraction,
            "usage": self.usage,
            "recommendation": self.recommendation,
            "calibration": self.calibration.to_dict(),
        }


def _check_paths(paths: Sequence[str | Path]) -> list[str]:
    if not paths:
        raise InputError("LOGFILE", "", "no log file given.",
                         "name one or more job event logs (the file of `log =` in the submit "
                         "file).")
    out: list[str] = []
    seen: set[str] = set()
    for raw in paths:
        p = str(raw)
        if not os.path.exists(p):
            raise InputError("LOGFILE", p, "no such file.",
                             "give the path of a job event log (the file named by `log =` in "
                             "the submit file).", source=p)
        if os.path.isdir(p):
            raise InputError("LOGFILE", p, "is a directory, not a log file.",
                             f"name the log files in it, e.g. {os.path.join(p, '*.log')}.",
                             source=p)
        if not os.access(p, os.R_OK):
            raise InputError("LOGFILE", p, "cannot be read (permission denied).",
                             "check the file's permissions.", source=p)
        key = os.path.realpath(p)
        if key not in seen:  # the same log named twice counts once
            seen.add(key)
            out.append(p)
    return out


def analyze_logs(paths: Sequence[str | Path], headroom: float = 0.2,
                 confidence: float = 0.95) -> LogReport:
    """Parse the logs and build the report. A missing file raises InputError; a log that is
    truncated, corrupt or not a log at all is reported in `.errors` (and `.partial`), with
    everything read before the fault still analysed."""
    if not (0.0 <= headroom <= 4.0):
        raise InputError("--headroom", headroom, "must be between 0 and 4 (a fraction: 0.2 "
                         "is 20% above the measured peak).", "use e.g. --headroom 0.2.")
    if not (0.5 <= confidence < 1.0):
        raise InputError("confidence", confidence, "must be in [0.5, 1).", "use 0.95.")
    files = _check_paths(paths)
    parsed = [parse_log(p) for p in files]
    jobs = [j for p in parsed for j in p.jobs.values()]
    errors = [{"log": p.path, "message": p.error} for p in parsed if p.error]
    t = totals(jobs)
    cal = calibrate(jobs, {p.path: p.last_event_s for p in parsed},
                    [Path(p.path).name for p in parsed], confidence)
    return LogReport(logs=parsed, jobs=jobs, totals=t, usage=usage(jobs),
                     recommendation=recommend(jobs, t, headroom), calibration=cal,
                     headroom=headroom, errors=errors)


__all__ = ["Calibration", "JobRecord", "LogReport", "ParsedLog", "analyze_logs",
           "parse_log", "write_fragment"]
