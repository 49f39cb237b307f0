"""Synthetic HTCondor job event logs, in the exact layout HTCondor writes, with known truth.

For tests and the parse-speed benchmark: `write_log(path, GeneratorConfig(jobs=100_000))`
writes a log whose every event the official reader accepts, and returns what went into it
(`Truth`: executions, evictions, holds by code, running hours, run times of completed jobs, ...)
so that the analysis can be checked against it.

Each job: submitted (000), maybe removed while idle (009); otherwise runs (001, preceded by
input transfer 040 in current-format logs) until it finishes (040 output, 005 with the
resources table) or is interrupted: evicted after an exponential time to eviction (004, the
work is lost: no checkpointing), held for memory (012 code 34, then released 013 with a
larger request), disconnected (022) and reconnected (023) or not (024, rescheduled), a shadow
exception (007), or held for running past the duration limit (012 code 46, then removed 009).
Image-size updates (006) report the memory in use. Layouts follow HTCondor's
`condor_event.cpp` (formatBody, formatUsageAd) and the real logs in ../shared/data.

    python -m advisor.logs.generate big.log --jobs 100000 --seed 1
"""

from __future__ import annotations

import argparse
import calendar
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from advisor.output import atomic_write

SUBMIT_HOST = ("<10.0.4.21:9618?addrs=10.0.4.21-9618&alias=ap40.example.edu&noUDP"
               "&sock=schedd_2146_9c3e>")


@dataclass(frozen=True)
class GeneratorConfig:
    jobs: int = 1000
    seed: int = 0
    date_format: str = "iso"  # "iso" (current HTCondor) or "old" (MM/DD, no year)
    start: str = "2025-03-03T08:00:00"  # time of the first submission (UTC)
    arrival_mean_s: float = 20.0  # mean time between submissions
    queue_wait_mean_s: float = 600.0  # mean wait for a match, each attempt
    work_mean_hours: float = 2.0  # lognormal run time of a complete run
    work_cv: float = 0.8
    eviction_mean_hours: float | None = 8.0  # exponential time to eviction; None: never
    max_run_hours: float = 12.0  # held with code 46 past this
    request_memory_mb: int = 8192
    memory_mean_mb: float = 3000.0
    request_disk_kb: int = 4_194_304
    request_cpus: int = 2
    request_gpus: int = 1
    p_abort_idle: float = 0.01
    p_hold_memory: float = 0.02
    p_disconnect: float = 0.02
    p_reconnect_fails: float = 0.3  # of disconnections
    p_shadow_exception: float = 0.005
    p_exit_nonzero: float = 0.03
    p_killed_by_signal: float = 0.005

    def __post_init__(self) -> None:
        if self.jobs < 0:
            raise ValueError(f"jobs = {self.jobs!r} must be >= 0")
        if self.date_format not in ("iso", "old"):
            raise ValueError(f"date_format = {self.date_format!r} must be 'iso' or 'old'")


@dataclass
class Truth:
    """What the generator put into the log, for checking the analysis."""

    jobs: int = 0
    events: int = 0
    completed: int = 0
    exit_codes: dict[int, int] = field(default_factory=dict)
    signals: int = 0
    executions: int = 0
    evictions: int = 0
    holds: dict[int, int] = field(default_factory=dict)
    releases: int = 0
    aborted: int = 0
    disconnections: int = 0
    reconnections: int = 0
    reconnect_failures: int = 0
    shadow_exceptions: int = 0
    running_hours: float = 0.0
    work_hours_exit0: list[float] = field(default_factory=list)
    memory_peak_mb: dict[str, int] = field(default_factory=dict)
    bytes: int = 0


def _fmt_rusage(seconds: int) -> str:
    d, rem = divmod(max(0, int(seconds)), 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    return f"Usr {d} {h:02d}:{m:02d}:{s:02d}, Sys 0 00:00:{min(59, s // 7):02d}"


def _is_int(v: object) -> bool:
    return isinstance(v, int)


def resources_table(rows: list[tuple[str, object, object, object, str]]) -> str:
    """The `Partitionable Resources` block as HTCondor's formatUsageAd writes it.

    rows: (resource, usage, request, allocated, assigned) with "" for an empty cell; resources
    in HTCondor's order (alphabetical). Integer cells in a column that holds a float get three
    spaces so that they line up with the decimal point.
    """
    def cell(v: object) -> str:
        if v == "" or v is None:
            return ""
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    cols = list(zip(*[(r[1], r[2], r[3]) for r in rows], strict=True))
    hfp = [any(isinstance(v, float) for v in col) for col in cols]
    table = []
    for res, use, req, alloc, assigned in rows:
        cells = []
        for i, v in enumerate((use, req, alloc)):
            c = cell(v)
            if hfp[i] and _is_int(v):
                c += "   "
            cells.append(c)
        table.append((res, cells, assigned))
    c_use = max([8] + [len(c[0]) for _, c, _ in table])
    c_req = max([8] + [len(c[1]) for _, c, _ in table])
    c_alloc = max([0] + [len(c[2]) for _, c, _ in table])
    c_assigned = max([0] + [len(a) for _, _, a in table])
    w_alloc = max(c_alloc, 9)
    out = [f"\tPartitionable Resources : {'Usage':>{c_use}} {'Request':>{c_req}} "
           f"{'Allocated' if c_alloc else '':>{w_alloc}} {'Assigned' if c_assigned else ''}\n"]
    labels = {"Memory": "Memory (MB)", "Disk": "Disk (KB)", "Gpus": "Gpus (Average)",
              "GpusMemory": "GpusMemory (MB)", "TimeExecute": "TimeExecute (s)",
              "TimeSlotBusy": "TimeSlotBusy (s)"}
    for res, (u, r, a), assigned in table:
        out.append(f"\t   {labels.get(res, res):<20} : {u:>{c_use}} {r:>{c_req}} "
                   f"{a:>{w_alloc}} {assigned}\n")
    return "".join(out)


class _Writer:
    """Collects (time, job order, sequence, text) and formats event headers."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        self.old = cfg.date_format == "old"
        self.events: list[tuple[int, int, int, str]] = []
        # current versions write "Job was aborted."; old ones "Job was aborted by the user."
        self.aborted_text = ("Job was aborted by the user.\n\tvia condor_rm (by user alice)\n"
                             if self.old else "Job was aborted.\n\tvia condor_rm (by user alice)\n")
        self.seq = 0

    def date(self, t: int) -> str:
        if self.old:
            return time.strftime("%m/%d %H:%M:%S", time.gmtime(t))
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))

    def add(self, num: int, job: tuple[int, int], order: int, t: int, body: str) -> None:
        self.seq += 1
        head = f"{num:03d} ({job[0]:03d}.{job[1]:03d}.000) {self.date(t)} "
        self.events.append((t, order, self.seq, head + body + "...\n"))


def _lognormal(rng: random.Random, mean: float, cv: float) -> float:
    sigma2 = math.log(1.0 + cv * cv)
    return rng.lognormvariate(math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2))


def write_log(path: str | Path, cfg: GeneratorConfig | None = None) -> Truth:
    """Write a synthetic log to `path` and return the truth behind it."""
    cfg = cfg or GeneratorConfig()
    rng = random.Random(cfg.seed)
    w = _Writer(cfg)
    truth = Truth(jobs=cfg.jobs)
    start = calendar.timegm(time.strptime(cfg.start, "%Y-%m-%dT%H:%M:%S"))
    t_submit = float(start)
    cluster = 1000
    for order in range(cfg.jobs):
        if order % 10 == 0:
            cluster += 1
        job = (cluster, order % 10)
        t_submit += rng.expovariate(1.0 / cfg.arrival_mean_s)
        _one_job(cfg, rng, w, truth, job, order, int(t_submit))
    w.events.sort()
    text = "".join(e[3] for e in w.events)
    atomic_write(path, text)
    truth.events = len(w.events)
    truth.bytes = len(text.encode())
    return truth


def _host(rng: random.Random) -> tuple[str, str]:
    n = rng.randrange(2000, 2040)
    ip = f"10.0.{n // 256}.{n % 256}"
    name = f"gpu{n}.example.edu"
    return (f"<{ip}:9618?addrs={ip}-9618&alias={name}&noUDP&sock=startd_{n}_{n % 97:02x}f1>",
            name)


def _one_job(cfg: GeneratorConfig, rng: random.Random, w: _Writer, truth: Truth,  # noqa: C901
             job: tuple[int, int], order: int, t: int) -> None:
    jid = f"{job[0]}.{job[1]}"
    w.add(0, job, order, t, f"Job submitted from host: {SUBMIT_HOST}\n")
    if rng.random() < cfg.p_abort_idle:
        t += int(rng.expovariate(1.0 / 1800.0)) + 1
        w.add(9, job, order, t, w.aborted_text)
        truth.aborted += 1
        return
    work_s = max(30, int(_lognormal(rng, cfg.work_mean_hours, cfg.work_cv) * 3600))
    peak_mb = max(16, int(_lognormal(rng, cfg.memory_mean_mb, 0.3)))
    request_mb = cfg.request_memory_mb
    hold_memory = rng.random() < cfg.p_hold_memory
    disk_used = int(_lognormal(rng, 2_000_000, 0.5))
    seen_peak = 0
    while True:
        t += int(rng.expovariate(1.0 / cfg.queue_wait_mean_s)) + 1
        execute_host, host = _host(rng)
        if not w.old:
            w.add(40, job, order, t, "Started transferring input files\n\tTransferring to host: "
                  f"{execute_host.replace('startd', 'starter')}\n")
            t += rng.randrange(1, 20)
            w.add(40, job, order, t, "Finished transferring input files\n")
            body = (f"Job executing on host: {execute_host}\n\tSlotName: slot1_{order % 8 + 1}@"
                    f"{host}\n\tCondorScratchDir = \"/var/lib/condor/execute/dir_{order}\"\n"
                    f"\tCpus = {cfg.request_cpus}\n\tDisk = {cfg.request_disk_kb + 1024}\n"
                    f"\tGPUs = {cfg.request_gpus}\n\tMemory = {request_mb}\n")
        else:
            body = f"Job executing on host: {execute_host}\n"
        t += 1
        w.add(1, job, order, t, body)
        truth.executions += 1
        run_start = t
        # What interrupts this run, if anything, and when.
        tte = (int(rng.expovariate(1.0 / (cfg.eviction_mean_hours * 3600)))
               if cfg.eviction_mean_hours else None)
        ends: list[tuple[int, str]] = [(work_s, "done")]
        if tte is not None:
            ends.append((tte, "evict"))
        if cfg.max_run_hours and work_s > cfg.max_run_hours * 3600:
            ends.append((int(cfg.max_run_hours * 3600), "duration"))
        if hold_memory:
            ends.append((max(60, int(work_s * rng.uniform(0.05, 0.5))), "memory"))
        if rng.random() < cfg.p_shadow_exception:
            ends.append((int(work_s * rng.random()), "shadow"))
        disconnect_at = (int(work_s * rng.random()) if rng.random() < cfg.p_disconnect
                         else None)
        if disconnect_at is not None and rng.random() < cfg.p_reconnect_fails:
            ends.append((disconnect_at + 60, "reconnect_failed"))
            disconnect_at_ok = None
        else:
            disconnect_at_ok = disconnect_at
        run_s, how = min(ends)
        run_s = max(run_s, 20)
        end = run_start + run_s
        # image size updates: early, and half-way with the peak in use so far
        grow = int(request_mb * rng.uniform(1.05, 1.3)) if how == "memory" else peak_mb
        for frac, mem in ((0.0, max(1, peak_mb // 10)), (0.5, grow)):
            ts = run_start + 8 + int(frac * (run_s - 8))
            if ts < end:
                seen_peak = max(seen_peak, mem)
                w.add(6, job, order, ts, f"Image size of job updated: {mem * 1100}\n\t{mem}  -  "
                      f"MemoryUsage of job (MB)\n\t{mem * 1024}  -  ResidentSetSize of job (KB)\n")
        if disconnect_at is not None and run_start + disconnect_at < end:
            td = run_start + disconnect_at
            w.add(22, job, order, td, "Job disconnected, attempting to reconnect\n    Socket "
                  "between submit and execute hosts closed unexpectedly\n    Trying to reconnect "
                  f"to slot1_{order % 8 + 1}@{host} {execute_host}\n")
            truth.disconnections += 1
            if disconnect_at_ok is not None and td + 30 < end:
                w.add(23, job, order, td + 30, f"Job reconnected to slot1_{order % 8 + 1}@{host}\n"
                      f"    startd address: {execute_host}\n    starter address: "
                      f"{execute_host.replace('startd', 'starter')}\n")
                truth.reconnections += 1
        truth.running_hours += run_s / 3600.0
        t = end  # the next attempt waits from here
        ru = _fmt_rusage(int(run_s * 0.9))
        if how == "done":
            break
        if how == "evict":
            old = "(0) Job was not checkpointed." if w.old else "(0) CPU times"
            w.add(4, job, order, end, f"Job was evicted.\n\t{old}\n\t\t{ru}  -  Run Remote Usage"
                  f"\n\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage\n\t0  -  Run Bytes "
                  f"Sent By Job\n\t{rng.randrange(10**6, 10**8)}  -  Run Bytes Received By Job\n")
            truth.evictions += 1
            continue
        if how == "reconnect_failed":
            w.add(24, job, order, end, f"Job reconnection failed\n    Job not found at execution "
                  f"machine\n    Can not reconnect to slot1_{order % 8 + 1}@{host}, rescheduling "
                  f"job\n")
            truth.reconnect_failures += 1
            continue
        if how == "shadow":
            w.add(7, job, order, end, "Shadow exception!\n\tError from starter on "
                  f"slot1_{order % 8 + 1}@{host}: Failed to transfer files\n\t0  -  Run Bytes "
                  "Sent By Job\n\t0  -  Run Bytes Received By Job\n")
            truth.shadow_exceptions += 1
            continue
        if how == "memory":
            w.add(12, job, order, end, f"Job was held.\n\tError from slot1_{order % 8 + 1}@{host}: "
                  f"Job has gone over cgroup memory limit of {request_mb} megabytes. Peak usage: "
                  f"{grow} megabytes.  Consider resubmitting with a higher request_memory.\n"
                  f"\tCode 34 Subcode 102\n")
            truth.holds[34] = truth.holds.get(34, 0) + 1
            w.add(13, job, order, end + 600, "Job was released.\n\tretry_request_memory\n")
            truth.releases += 1
            t = end + 600
            request_mb *= 2
            hold_memory = False
            continue
        # duration limit: held, then removed
        w.add(12, job, order, end, "Job was held.\n\tThe job exceeded allowed job duration of "
              f"{cfg.max_run_hours:g} hours.\n\tCode 46 Subcode 0\n")
        truth.holds[46] = truth.holds.get(46, 0) + 1
        w.add(9, job, order, end + 3600, w.aborted_text)
        truth.aborted += 1
        truth.memory_peak_mb[jid] = seen_peak
        return
    # completion
    if not w.old:
        w.add(40, job, order, end, "Started transferring output files\n")
        w.add(40, job, order, end + 2, "Finished transferring output files\n")
    t_end = end + (2 if not w.old else 0)
    signal = rng.random() < cfg.p_killed_by_signal
    code = 1 if rng.random() < cfg.p_exit_nonzero else 0
    ru_total = _fmt_rusage(int(run_s * 0.9))
    if signal:
        status = "\t(0) Abnormal termination (signal 9)\n\t(0) No core file\n"
        truth.signals += 1
    else:
        status = f"\t(1) Normal termination (return value {code})\n"
        truth.exit_codes[code] = truth.exit_codes.get(code, 0) + 1
        if code == 0:
            truth.work_hours_exit0.append(run_s / 3600.0)
    cpus_used = round(rng.uniform(0.3, 1.0) * cfg.request_cpus, 2)
    rows: list[tuple[str, object, object, object, str]] = [
        ("Cpus", cpus_used, cfg.request_cpus, cfg.request_cpus, ""),
        ("Disk", disk_used, cfg.request_disk_kb, cfg.request_disk_kb + 1024, "")]
    if cfg.request_gpus:
        gpus_used = round(rng.betavariate(4, 2) * cfg.request_gpus, 2)
        assigned = ",".join(f"GPU-{rng.getrandbits(32):08x}" for _ in range(cfg.request_gpus))
        rows.append(("Gpus", gpus_used, cfg.request_gpus, cfg.request_gpus, f'"{assigned}"'))
        rows.append(("GpusMemory", int(_lognormal(rng, 12000, 0.2)), "", "", ""))
    rows.append(("Memory", seen_peak, request_mb, request_mb, ""))
    if not w.old:
        rows.append(("TimeExecute", run_s, "", "", ""))
    toe = (f"\n\tJob terminated of its own accord at "
           f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(t_end))} with exit-code {code}.\n"
           if not w.old and not signal else "")
    w.add(5, job, order, t_end, "Job terminated.\n" + status +
          f"\t\t{ru}  -  Run Remote Usage\n\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage\n"
          f"\t\t{ru_total}  -  Total Remote Usage\n\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Total "
          f"Local Usage\n\t40960  -  Run Bytes Sent By Job\n\t1048576  -  Run Bytes Received By "
          f"Job\n\t40960  -  Total Bytes Sent By Job\n\t1048576  -  Total Bytes Received By Job\n"
          + resources_table(rows) + toe)
    truth.completed += 1
    truth.memory_peak_mb[jid] = seen_peak


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m advisor.logs.generate",
                                description="write a synthetic HTCondor job event log")
    p.add_argument("path")
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--date-format", choices=("iso", "old"), default="iso")
    p.add_argument("--eviction-mean-hours", type=float, default=8.0,
                   help="mean time to eviction; 0 for none")
    a = p.parse_args(argv)
    cfg = GeneratorConfig(jobs=a.jobs, seed=a.seed, date_format=a.date_format,
                          eviction_mean_hours=a.eviction_mean_hours or None)
    t0 = time.perf_counter()
    truth = write_log(a.path, cfg)
    print(f"{a.path}: {truth.jobs} jobs, {truth.events} events, {truth.bytes / 1e6:.1f} MB in "
          f"{time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
