"""What the measured steps cost the machine, from /proc: CPU time, shared memory, contention.

Read in the profiled child at step boundaries, outside the timed intervals (Linux; elsewhere
every reader returns None and the profile says the figure is unknown).

* CPU seconds of a process: ``utime + stime`` of /proc/PID/stat (all its threads); DataLoader
  workers that exited and were reaped are in the parent's ``cutime + cstime``.
* Host memory: the proportional set size (``Pss`` of /proc/PID/smaps_rollup) summed over the
  main process and its DataLoader workers. Forked workers share the parent's pages copy-on-write;
  summing their RSS counts those pages once per worker, PSS splits each shared page among the
  processes that map it, so the sum is what the tree really holds.
* Contention: busy jiffies of the CPUs this process may run on (/proc/stat, per CPU line) against
  the CPU time of the profiled tree over the same wall time; what is left is other processes'
  load on those CPUs. `classify` decides whether it disturbed the measurement.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from advisor.procfs import pss_bytes

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

# Other processes' load, in cores, at which a measurement counts as disturbed: a quarter of the
# CPUs the profile may use, and at least half a core, when it took cores the profile wanted.
DISTURBED_SHARE = 0.25
DISTURBED_MIN_CORES = 0.5


def proc_cpu_s(pid: int | str = "self", children: bool = False) -> float | None:
    """utime + stime of `pid` in seconds (+ cutime + cstime of reaped children if asked)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            text = fh.read()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()
    try:  # fields after the command name start at field 3 (state)
        ticks = int(fields[11]) + int(fields[12])
        if children:
            ticks += int(fields[13]) + int(fields[14])
    except (IndexError, ValueError):
        return None
    return ticks / _TICK


def tree_pss_bytes(pids: list[int]) -> int | None:
    """Σ PSS of this process and `pids` (those still alive)."""
    own = pss_bytes("self")
    if own is None:
        return None
    return own + sum(p for p in (pss_bytes(pid) for pid in pids) if p is not None)


def cpus_allowed() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def machine_busy_s(cpus: list[int]) -> float | None:
    """Busy seconds (all but idle and iowait) summed over `cpus`, from /proc/stat."""
    wanted = {f"cpu{c}" for c in cpus}
    busy = 0
    seen = False
    try:
        with open("/proc/stat") as fh:
            for line in fh:
                parts = line.split()
                if not parts or parts[0] not in wanted:
                    continue
                vals = [int(x) for x in parts[1:]]
                idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
                # guest time is already inside user time
                busy += sum(vals[:8]) - idle if len(vals) >= 8 else sum(vals) - idle
                seen = True
    except (OSError, ValueError, IndexError):
        return None
    return busy / _TICK if seen else None


def loadavg_1m() -> float | None:
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


@dataclass
class Reading:
    """One snapshot at a step boundary."""

    main_cpu_s: float | None
    workers_cpu_s: float | None
    machine_busy_s: float | None
    loadavg: float | None


def read(worker_pids: list[int], cpus: list[int]) -> Reading:
    main = proc_cpu_s("self")
    # Reaped workers (non-persistent loaders end theirs each epoch) are in our cutime.
    reaped = None
    both = proc_cpu_s("self", children=True)
    if both is not None and main is not None:
        reaped = both - main
    workers = reaped
    if workers is not None:
        for pid in worker_pids:
            w = proc_cpu_s(pid)
            if w is not None:
                workers += w
    return Reading(main, workers, machine_busy_s(cpus), loadavg_1m())


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else max(0.0, b - a)


def classify(start: Reading, end: Reading, wall_s: float, cpus: int, wanted_cores: float
             ) -> dict[str, Any]:
    """The contention record of the measured steps: CPU time of the profiled tree, other
    processes' load on our CPUs, and whether it disturbed the measurement."""
    main = _delta(start.main_cpu_s, end.main_cpu_s)
    workers = _delta(start.workers_cpu_s, end.workers_cpu_s)
    busy = _delta(start.machine_busy_s, end.machine_busy_s)
    out: dict[str, Any] = {"wall_s": wall_s, "process_cpu_s": main, "workers_cpu_s": workers,
                           "cpus_available": cpus, "cores_wanted": round(wanted_cores, 2),
                           "loadavg_1m": [start.loadavg, end.loadavg],
                           "other_load_cores": None, "disturbed": False, "reason": None}
    if wall_s <= 0 or busy is None or main is None:
        out["reason"] = "machine load unknown (no /proc/stat)"
        return out
    own = main + (workers or 0.0)
    others = max(0.0, busy - own) / wall_s
    out["other_load_cores"] = round(others, 3)
    out["process_cores_used"] = round(own / wall_s, 3)
    limit = max(DISTURBED_MIN_CORES, DISTURBED_SHARE * cpus)
    free_for_us = cpus - others
    if others >= limit and free_for_us < wanted_cores - 0.25:
        out["disturbed"] = True
        out["reason"] = (f"other processes kept {others:.2f} of this machine's {cpus} CPUs busy "
                         f"while the steps were measured; the script wanted {wanted_cores:.3g}")
    return out
