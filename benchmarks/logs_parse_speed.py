"""How fast `advisor logs` reads a large job event log: jobs/s and events/s.

Writes a synthetic log of N jobs (advisor.logs.generate; default 10^5) unless --log names one,
then times, each as wall clock and process CPU time:

  1. htcondor2 alone: iterating `JobEventLog(path).events(stop_after=0)`, touching nothing;
  2. parse_log in one process: the same iteration plus our per-job records (the aggregation's
     share is the difference between 2 and 1); with --workers N also parse_log reading the
     file with N processes (advisor.logs.parallel; cpu s then counts the parent only);
  3. the rest of analyze_logs: totals, usage distributions, recommendation, calibration;
  4. the JSON document (`LogReport.to_dict` and `advisor.output.dumps`), with --json.

Prints figures; asserts nothing (timings depend on the machine and its load).

    python benchmarks/logs_parse_speed.py                 # 10^5 jobs
    python benchmarks/logs_parse_speed.py --jobs 20000 --json
    python benchmarks/logs_parse_speed.py --log my_jobs.log
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from advisor.logs import analyze_logs  # noqa: E402
from advisor.logs.calibrate import calibrate  # noqa: E402
from advisor.logs.generate import GeneratorConfig, write_log  # noqa: E402
from advisor.logs.parse import parse_log  # noqa: E402
from advisor.logs.recommend import recommend  # noqa: E402
from advisor.logs.report import totals, usage  # noqa: E402


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def bindings_only(path: str) -> int:
    import htcondor2

    n = 0
    for _ in htcondor2.JobEventLog(path).events(stop_after=0):
        n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--date-format", choices=("iso", "old"), default="iso")
    ap.add_argument("--log", help="time this log instead of a generated one")
    ap.add_argument("--json", action="store_true", help="also time building and dumping the JSON")
    ap.add_argument("--workers", type=int, default=0,
                    help="also time parse_log with this many reading processes")
    a = ap.parse_args(argv)

    tmp = None
    if a.log:
        path = a.log
    else:
        tmp = tempfile.TemporaryDirectory(prefix="logs_bench_")
        path = os.path.join(tmp.name, "bench.log")
        cfg = GeneratorConfig(jobs=a.jobs, seed=a.seed, date_format=a.date_format)
        _, wall, cpu = timed(lambda: write_log(path, cfg))
        print(f"generated {a.jobs} jobs into {path} in {wall:.1f} s (cpu {cpu:.1f} s)")
    size_mb = os.path.getsize(path) / 1e6

    import htcondor2  # noqa: F401  (load the bindings outside the timings)

    n_events, w_bind, c_bind = timed(lambda: bindings_only(path))
    parsed, w_parse, c_parse = timed(lambda: parse_log(path, workers=1))
    jobs = list(parsed.jobs.values())
    n_jobs = len(jobs)

    def rest() -> None:
        t = totals(jobs)
        usage(jobs)
        recommend(jobs, t, 0.2)
        calibrate(jobs, {path: parsed.last_event_s}, [path])

    _, w_rest, c_rest = timed(rest)

    print(f"log: {size_mb:.1f} MB, {n_events} events, {n_jobs} jobs "
          f"({n_events / max(n_jobs, 1):.1f} events/job); error: {parsed.error}")
    print(f"{'stage':<44} {'wall s':>8} {'cpu s':>8} {'jobs/s':>10} {'events/s':>10}")

    def row(name: str, wall: float, cpu: float) -> None:
        print(f"{name:<44} {wall:>8.2f} {cpu:>8.2f} {n_jobs / max(wall, 1e-9):>10.0f} "
              f"{n_events / max(wall, 1e-9):>10.0f}")

    row("1. htcondor2 JobEventLog alone", w_bind, c_bind)
    row("2. parse_log (htcondor2 + per-job records)", w_parse, c_parse)
    row("   our aggregation's share (2 - 1)", max(w_parse - w_bind, 0.0),
        max(c_parse - c_bind, 0.0))
    if a.workers > 1:
        par, w_par, c_par = timed(lambda: parse_log(path, workers=a.workers))
        assert par.events == parsed.events
        row(f"2p. parse_log with {a.workers} reading processes", w_par, c_par)
    row("3. totals, usage, recommendation, calibration", w_rest, c_rest)
    row("   parse + analysis (2 + 3)", w_parse + w_rest, c_parse + c_rest)
    if a.json:
        from advisor.output import dumps

        report = analyze_logs([path])
        data, w_dict, c_dict = timed(report.to_dict)
        text, w_dump, c_dump = timed(lambda: dumps(data))
        row("4a. LogReport.to_dict", w_dict, c_dict)
        row(f"4b. dumps ({len(text) / 1e6:.0f} MB of JSON)", w_dump, c_dump)
    try:
        load = os.getloadavg()[0]
        print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f} (others' work slows "
              f"the wall clock; cpu s is this process alone)")
    except OSError:
        pass
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
