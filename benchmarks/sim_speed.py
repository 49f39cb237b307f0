"""Simulator speed and memory: simulated jobs per second, beside a bare SimPy M/M/c queue.

(a) the CHTC pool (tiers, per-user limits, owned slots with evictions, fair share) with 10^4
    workload jobs plus background load;
(b) a 10,000-GPU pool (four GPU types) with 10^6 jobs arriving at 90% load.
Each is compared with a bare SimPy M/M/c model (a generator process per customer taking one of
c tokens from a `simpy.Container`; a `simpy.Resource` is 2-3x slower still at 10,000 servers
because releasing a request is O(c)) with as many servers and jobs (90% load, mean service 1 h), run in the same process; the ratio is ours / bare (goal ≥ 0.5).
Peak RSS is the process's high-water mark after our run (goal for (b): under 2 GB), and (b)'s
wall time goal is under 60 s. Figures are printed, nothing is asserted.

    python benchmarks/sim_speed.py            # both
    python benchmarks/sim_speed.py --case a   # one
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from typing import Any

import numpy as np
import simpy

from simulator import Scenario, run


def bare_mmc(servers: int, jobs: int, arrival_rate: float, service_mean: float, seed: int = 1) -> float:
    """Seconds for a bare SimPy M/M/c model of `jobs` customers."""
    rng = np.random.default_rng(seed)
    inter = rng.exponential(1.0 / arrival_rate, jobs).tolist()
    service = rng.exponential(service_mean, jobs).tolist()
    env = simpy.Environment()
    server = simpy.Container(env, capacity=servers, init=servers)

    def customer(s: float) -> Any:
        yield server.get(1)
        yield env.timeout(s)
        yield server.put(1)

    def source() -> Any:
        for a, s in zip(inter, service, strict=True):
            yield env.timeout(a)
            env.process(customer(s))

    env.process(source())
    t = time.perf_counter()
    env.run()
    return time.perf_counter() - t


def case_a(jobs: int) -> tuple[Scenario, int, float]:
    sc = Scenario.from_dict({
        "name": "chtc-bench", "pool": "chtc", "seed": 1,
        "workload": {"tasks": jobs, "arrival": {"dist": "exponential", "mean": 0.02},
                     "work_hours": {"dist": "lognormal", "mean": 2.0, "cv": 1.0},
                     "request": {"gpus": 1, "gpu_memory_gb": 8, "job_length": "short",
                                 "is_resumable": True},
                     "checkpoint": {"mode": "periodic", "interval_minutes": 60, "cost_seconds": 30,
                                    "restart_seconds": 120}},
        "background": {"users": 20, "arrival": {"dist": "exponential", "mean": 0.05},
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


def measure(label: str, sc: Scenario, servers: int, rate: float) -> None:
    jobs = sc.workload.tasks
    t = time.perf_counter()
    res = run(sc, 1)
    ours = time.perf_counter() - t
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    simulated = jobs + int(res.summary.get("background_jobs", 0))
    bare = bare_mmc(servers, simulated, rate, 1.0)
    ours_rate, bare_rate = simulated / ours, simulated / bare
    print(f"({label}) {sc.name}: {simulated:,} jobs ({jobs:,} workload) on {servers:,} GPUs")
    print(f"    ours : {ours:7.2f} s  {ours_rate:10,.0f} jobs/s   peak RSS {rss_mb:,.0f} MB")
    print(f"    bare SimPy M/M/c({servers}): {bare:7.2f} s  {bare_rate:10,.0f} jobs/s")
    print(f"    ratio ours/bare: {ours_rate / bare_rate:.2f}")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", choices=("a", "b", "all"), default="all")
    p.add_argument("--jobs-a", type=int, default=10_000)
    p.add_argument("--jobs-b", type=int, default=1_000_000)
    args = p.parse_args(argv)
    if args.case in ("a", "all"):
        measure("a", *case_a(args.jobs_a))
    if args.case in ("b", "all"):
        measure("b", *case_b(args.jobs_b))


if __name__ == "__main__":
    main()
