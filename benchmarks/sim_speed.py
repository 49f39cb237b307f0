"""Simulator speed and memory: simulated jobs per second, beside a bare SimPy M/M/c queue.

(a) the CHTC pool (tiers, per-user limits, owned slots with evictions, owners using their own
    GPUs half of the time, fair share) with 10^4 workload jobs plus background load, run with
    fair share and first come, first served; (a0) the same with `owner_busy_fraction: 0` (owners
    only evict, the model before owners' own use: the pool is ~90% busy, as the bare model; with
    their use it is saturated, so more jobs wait and each release scans more queues);
(b) a 10,000-GPU pool (four GPU types, first come, first served) with 10^6 jobs at 90% load;
(c) as (a), crowded: 100 background users keeping the pool ~87% busy, so that many users'
    queues wait at once (the case where rescanning every queue on each release was costly).

The baseline is a bare SimPy M/M/c model with as many servers and jobs (90% load, mean service
1 h): a generator process per customer holding one of c `simpy.Resource` slots. Our run and the
bare run alternate (`--repeats` rounds, each case's best time kept) in this one process, so that
other work on the machine slows both alike; times are this process's CPU seconds. The ratio is
our jobs/s over the bare model's (goal for (a): >= 1.0 with fair share and with FCFS); (a) and
(c) also print FCFS / fair-share CPU time per job (goal: <= 1). Peak RSS is the process's
high-water mark after our first run of a case (goal for (b): under 400 MB), so run (b) alone
(`--case b`) to read it; (b) skips its bare run unless `--bare-b` is given (`Resource` is O(c)
per release: at 10,000 servers it takes minutes). Figures are printed, nothing is asserted.

    python benchmarks/sim_speed.py --case a             # the CHTC model, 10^4 jobs
    python benchmarks/sim_speed.py --case a0            # the same, owners only evict
    python benchmarks/sim_speed.py --case c             # the same, crowded
    python benchmarks/sim_speed.py --case b             # 10^6 jobs on 10^4 GPUs (RSS)
    python benchmarks/sim_speed.py --case b --jobs-b 100000 --bare-b
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import simpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator import Scenario, run  # noqa: E402


def bare_mmc(servers: int, jobs: int, arrival_rate: float, service_mean: float, seed: int = 1) -> float:
    """Seconds for a bare SimPy M/M/c model of `jobs` customers on a `simpy.Resource`."""
    rng = np.random.default_rng(seed)
    inter = rng.exponential(1.0 / arrival_rate, jobs).tolist()
    service = rng.exponential(service_mean, jobs).tolist()
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=servers)

    def customer(s: float) -> Any:
        with server.request() as req:
            yield req
            yield env.timeout(s)

    def source() -> Any:
        for a, s in zip(inter, service, strict=True):
            yield env.timeout(a)
            env.process(customer(s))

    env.process(source())
    t = time.process_time()
    env.run()
    return time.process_time() - t


def case_a(jobs: int, users: int = 20, background_mean: float = 0.05,
           owners: float | None = None) -> tuple[Scenario, int, float]:
    extra = {} if owners is None else {"owner_busy_fraction": owners}
    sc = Scenario.from_dict({
        "name": "chtc-bench" if owners is None else f"chtc-bench, owners {owners:g}",
        "pool": "chtc", "seed": 1, **extra,
        "workload": {"tasks": jobs, "arrival": {"dist": "exponential", "mean": 0.02},
                     "work_hours": {"dist": "lognormal", "mean": 2.0, "cv": 1.0},
                     "request": {"gpus": 1, "gpu_memory_gb": 8, "job_length": "short",
                                 "is_resumable": True},
                     "checkpoint": {"mode": "periodic", "interval_minutes": 60, "cost_seconds": 30,
                                    "restart_seconds": 120}},
        "background": {"users": users, "arrival": {"dist": "exponential", "mean": background_mean},
                       "work_hours": {"dist": "lognormal", "mean": 6.0, "cv": 1.5},
                       "request": {"gpus": 1, "job_length": "medium"}},
    })
    return sc, sc.pool.total_gpus, 0.9 * sc.pool.total_gpus


def case_b(jobs: int) -> tuple[Scenario, int, float]:
    slots = [{"gpu": g, "count": 2500} for g in
             ("A100-SXM4-80GB", "A100-SXM4-40GB", "H100-SXM5-80GB", "H200")]
    rate = 0.9 * 10_000 / 1.0
    sc = Scenario.from_dict({
        "name": "10k-gpus", "seed": 1, "fair_share": "none",
        "pool": {"name": "big", "slots": slots},
        "workload": {"tasks": jobs, "arrival": {"dist": "exponential", "mean": 1.0 / rate},
                     "work_hours": {"dist": "exponential", "mean": 1.0},
                     "speed": {"A100-SXM4-80GB": 1.0, "A100-SXM4-40GB": 1.0,
                               "H100-SXM5-80GB": 1.0, "H200": 1.0}},
    })
    return sc, 10_000, rate


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ours(sc: Scenario) -> tuple[float, int]:
    """(seconds, jobs simulated: workload and background)."""
    t = time.process_time()
    res = run(sc, 1)
    seconds = time.process_time() - t
    return seconds, sc.workload.tasks + int(res.summary.get("background_jobs", 0))


def report(label: str, seconds: float, jobs: int, bare: float | None, servers: int) -> None:
    rate = jobs / seconds
    line = f"    {label:<22} {seconds:7.2f} s {rate:10,.0f} jobs/s"
    if bare is not None:
        line += f"   ratio to bare SimPy Resource M/M/{servers}: {rate / (jobs / bare):.2f}"
    print(line)


def run_a(label: str, built: tuple[Scenario, int, float], repeats: int) -> None:
    fair, servers, rate = built
    jobs = fair.workload.tasks
    fcfs = fair.with_overrides({"fair_share": "none"})
    best: dict[str, float] = {}
    counts: dict[str, int] = {}
    rss = 0.0
    for _ in range(repeats):  # interleaved: ours (fair), bare, ours (FCFS), bare
        for name, sc in (("fair share", fair), ("FCFS", fcfs)):
            seconds, counts[name] = ours(sc)
            rss = rss or peak_rss_mb()
            best[name] = min(best.get(name, seconds), seconds)
            bare_name = f"bare {name}"
            b = bare_mmc(servers, counts[name], rate, 1.0)
            best[bare_name] = min(best.get(bare_name, b), b)
    print(f"({label}) {fair.name}: {counts['fair share']:,} jobs with fair share, {counts['FCFS']:,} "
          f"FCFS ({jobs:,} workload) on {servers:,} GPUs; best of {repeats}; peak RSS {rss:,.0f} MB")
    for name in ("fair share", "FCFS"):
        report(name, best[name], counts[name], best[f"bare {name}"], servers)
        report(f"bare M/M/{servers} ({name})", best[f"bare {name}"], counts[name], None, servers)
    per_job = {k: best[k] / counts[k] for k in ("fair share", "FCFS")}
    print(f"    FCFS / fair share, seconds per job: {per_job['FCFS'] / per_job['fair share']:.2f}")
    sys.stdout.flush()


def run_b(jobs: int, bare_too: bool) -> None:
    sc, servers, rate = case_b(jobs)
    seconds, count = ours(sc)
    print(f"(b) {sc.name}: {count:,} jobs on {servers:,} GPUs; peak RSS after our run "
          f"{peak_rss_mb():,.0f} MB")
    bare = bare_mmc(servers, count, rate, 1.0) if bare_too else None
    report("ours", seconds, count, bare, servers)
    if bare is not None:
        report(f"bare M/M/{servers}", bare, count, None, servers)
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", choices=("a", "a0", "b", "c", "all"), default="all")
    p.add_argument("--jobs-a", type=int, default=10_000)
    p.add_argument("--jobs-b", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=2, help="interleaved rounds for (a), (c) (default 2)")
    p.add_argument("--bare-b", action="store_true", help="also time the bare model for (b)")
    args = p.parse_args(argv)
    if args.case in ("b", "all"):
        run_b(args.jobs_b, args.bare_b)
    if args.case in ("a", "all"):
        run_a("a", case_a(args.jobs_a), args.repeats)
    if args.case in ("a0", "all"):
        run_a("a0", case_a(args.jobs_a, owners=0.0), args.repeats)
    if args.case in ("c", "all"):
        run_a("c", case_a(args.jobs_a, users=100, background_mean=0.04), args.repeats)


if __name__ == "__main__":
    main()
