"""Replications of a scenario with 95% confidence intervals, run on Dask.

Replication i runs with `SeedSequence(seed).spawn(R)[i]`, and the results are put back in
replication order before they are aggregated, so the answer is the same for any number of
workers (and inline). `workers` 0 or 1 (the default) run in this process; `workers>1` a
LocalCluster of that many single-threaded processes once the first run, timed here, shows that
the rest outweighs their start (LOCAL_START_S; else the rest runs here too);
`scheduler="tcp://host:8786"` an existing Dask cluster (e.g. one started on HTCondor or Slurm
with dask-jobqueue, or by `--cluster slurm|htcondor`: advisor.cluster). Intervals are Student-t intervals of the replication means:
mean ± t(0.975, R−1)·s/√R (none for a single replication). Nested metrics such as
`utilization_by_gpu` are aggregated key by key. A progress callback `progress(done, total)`
lets the caller draw a bar; nothing here prints. `run_replications` is the one runner: `replicate`
and the advisor's what-if comparisons and trace replays all go through it, so the same failure
(too few replications, an unreachable scheduler) is the same error everywhere.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulator.errors import ConfigError, RunFailure
from simulator.scenario import Scenario

SCHEDULER_TIMEOUT_S = 30.0      # how long to try to reach an existing Dask scheduler
# About what starting local worker processes costs (the measure: 2 local workers made 8
# small replications take 10.9 s instead of 1.5 s inline); below it, runs stay in this process.
LOCAL_START_S = 5.0

# t(0.975, df) for df = 1..30; beyond, the Cornish-Fisher expansion is accurate to 1e-4.
_T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
         2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
         2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom."""
    if df < 1:
        return math.nan
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959963985
    v = float(df)
    return (z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3))


def interval(values: Sequence[float]) -> dict[str, float]:
    """{mean, ci95_low, ci95_high, std, n} of the finite values."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(x)
    if n == 0:
        return {"mean": math.nan, "ci95_low": math.nan, "ci95_high": math.nan, "std": math.nan, "n": 0}
    mean = float(np.mean(x))
    if n == 1:
        return {"mean": mean, "ci95_low": math.nan, "ci95_high": math.nan, "std": math.nan, "n": 1}
    std = float(np.std(x, ddof=1))
    half = t975(n - 1) * std / math.sqrt(n)
    return {"mean": mean, "ci95_low": mean - half, "ci95_high": mean + half, "std": std, "n": n}


def aggregate(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-metric intervals over replications (nested mappings key by key)."""
    out: dict[str, Any] = {}
    keys = list(dict.fromkeys(k for s in summaries for k in s))
    for key in keys:
        vals = [s.get(key) for s in summaries]
        if any(isinstance(v, Mapping) for v in vals):
            out[key] = aggregate([v for v in vals if isinstance(v, Mapping)])
        else:
            out[key] = interval([float(v) for v in vals if isinstance(v, (int, float))])
    return out


@dataclass(frozen=True)
class Replicated:
    scenario: str
    replications: int
    seed: int
    summary: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "replications": self.replications, "seed": self.seed,
                "summary": self.summary, "runs": self.runs}


def run_summary(scenario: Scenario, seed: np.random.SeedSequence) -> dict[str, Any]:
    """One replication's summary (the unit of work shipped to Dask)."""
    from simulator.engine import run

    return run(scenario, seed).summary


def replication_seeds(seed: int, replications: int) -> list[np.random.SeedSequence]:
    return np.random.SeedSequence(seed).spawn(replications)


def replicate(scenario: Scenario, replications: int | None = None, seed: int | None = None, *,
              workers: int = 1, scheduler: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> Replicated:
    """Run `replications` (default: the scenario's) independent replications and aggregate."""
    reps = int(replications if replications is not None else scenario.replications)
    base = int(seed if seed is not None else scenario.seed)
    runs = run_replications([scenario], reps, base, workers=workers, scheduler=scheduler,
                            progress=progress)[0]
    return Replicated(scenario=scenario.name, replications=reps, seed=base,
                      summary=aggregate(runs), runs=runs)


def run_replications(scenarios: Sequence[Scenario], replications: int, seed: int, *,
                     workers: int = 1, scheduler: str | None = None,
                     progress: Callable[[int, int], None] | None = None) -> list[list[dict[str, Any]]]:
    """Per scenario, the summaries of its `replications` runs in replication order, every
    scenario with the same replication seeds (common random numbers). The one runner of every
    simulation batch: one Dask cluster runs every scenario × replication; `workers=0` inline.

    Too few `replications` or a malformed `scheduler` address is a ConfigError naming the value
    and the fix, a scheduler that does not answer a RunFailure (see `connect`); an error inside a
    replication propagates unchanged."""
    if replications < 1:
        raise ConfigError("replications", replications, "must be at least 1.",
                          "give e.g. 10 replications.")
    seeds = replication_seeds(seed, replications)
    jobs = [(s, r) for s in range(len(scenarios)) for r in range(replications)]
    out: list[list[dict[str, Any]]] = [[{} for _ in range(replications)] for _ in scenarios]
    total = len(jobs)
    if progress:
        progress(0, total)
    inline = scheduler is None and workers <= 1
    if scheduler is None and workers > 1 and jobs:
        # The first run, timed in this process, says whether worker processes can pay for
        # their start: they save (1 - 1/workers) of the remaining time and cost LOCAL_START_S.
        s, r = jobs[0]
        began = time.perf_counter()
        out[s][r] = run_summary(scenarios[s], seeds[r])
        took = time.perf_counter() - began
        jobs = jobs[1:]
        done0 = 1
        if progress:
            progress(1, total)
        inline = took * len(jobs) * (1 - 1 / workers) < LOCAL_START_S
    else:
        done0 = 0
    if inline:
        for done, (s, r) in enumerate(jobs, done0 + 1):
            out[s][r] = run_summary(scenarios[s], seeds[r])
            if progress:
                progress(done, total)
        return out
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    else:
        client = connect(scheduler)
    try:
        remote: list[Any] = list(scenarios)
        if scheduler or workers > 1:
            remote = [client.scatter(s, broadcast=True) for s in scenarios]
        futures = [client.submit(run_summary, remote[s], seeds[r], pure=False) for s, r in jobs]
        index = {f.key: k for k, f in enumerate(futures)}
        for done, fut in enumerate(as_completed(futures), done0 + 1):
            s, r = jobs[index[fut.key]]
            out[s][r] = fut.result()
            if progress:
                progress(done, total)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return out


def connect(scheduler: str, timeout_s: float | None = None) -> Any:
    """A Dask client of the scheduler at `scheduler`: a ConfigError when the address does not
    parse (exit 2 in the CLI), a RunFailure when nothing answers there in time (exit 1)."""
    from distributed import Client
    from distributed.comm.addressing import parse_address, parse_host_port

    timeout = SCHEDULER_TIMEOUT_S if timeout_s is None else timeout_s
    try:
        scheme, location = parse_address(scheduler)
        if scheme in ("tcp", "tls", "ws", "wss"):
            parse_host_port(location, 8786)   # refuses e.g. `tcp://[::1` before any connection
        return Client(scheduler, timeout=timeout)
    except ValueError as exc:
        raise ConfigError("scheduler", scheduler, f"is not a Dask scheduler address ({exc}).",
                          "give the address of a running Dask scheduler, e.g. tcp://host:8786.") from None
    except (OSError, TimeoutError) as exc:
        raise RunFailure(f"the Dask scheduler at {scheduler} cannot be reached ({exc}). To fix: "
                         "start the scheduler, or check the address and the firewall; without a "
                         "scheduler the replications run on this machine.",
                         {"field": "scheduler", "value": scheduler}) from None
