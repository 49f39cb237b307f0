"""Simulate each candidate on the pool under other users' load, with common random numbers.

The scenario: the pool; other users keep the shared GPUs `background_load` busy (an assumption
the output states: 20 users, lognormal jobs of mean 6 h, cv 1.5, on the default tier) and, on a
pool with owned GPUs, 20 more keep that share of what the owners leave idle busy with
resumable jobs (mean 3 h), all under fair share with the workload's user; after a
warm-up the workload's jobs are submitted at once; time-to-results is the time from submission
to the last job's completion. For very many jobs a slice is simulated and the result scaled
(the pool is then throughput-bound: time grows linearly with the number of jobs).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from advisor.assess.rules import JOB_STARTUP_S
from advisor.recommend.candidates import Candidate, CheckpointCosts, Space
from simulator.pool import Pool
from simulator.replicate import replication_seeds, run_summary
from simulator.scenario import Scenario

WARMUP_HOURS = 24.0
MAX_SIM_JOBS = 1500
# Bounds on what one candidate's simulation covers, so that time and memory do not grow with the
# campaign (10^6 GPU hours or 10^11 tasks take as long as a few thousand hours of work): at most
# MAX_SIM_WORK_HOURS of work (reference-GPU hours) and MAX_SIM_RUNS checkpoint-to-checkpoint runs
# over all simulated jobs, and MAX_SIM_JOB_HOURS of work per job when it checkpoints (but at
# least MIN_SIM_RUNS_PER_JOB intervals). A checkpointing job is a renewal process (run, write,
# restart), so its time grows linearly with its work; a campaign beyond the pool's capacity is
# throughput-bound, so time grows linearly with the number of jobs. Both are scaled back.
MAX_SIM_WORK_HOURS = 20_000.0
MAX_SIM_RUNS = 100_000
MAX_SIM_JOB_HOURS = 1_000.0
MIN_SIM_RUNS_PER_JOB = 20
BACKGROUND_USERS = 20
BACKGROUND_MEAN_HOURS = 6.0
BACKGROUND_CV = 1.5
# Other users' backfill jobs: shorter, as CHTC advises for backfill (jobs under 4-6 h or
# checkpointing that often: docs/DOMAIN.md §2); an assumption the output states.
BACKFILL_USERS = 20
BACKFILL_MEAN_HOURS = 3.0
BACKFILL_CV = 1.0


@dataclass(frozen=True)
class Outcome:
    time_to_results_hours: dict[str, float]   # mean, p90, ci95_low, ci95_high
    goodput_fraction: float
    evictions_per_task: float
    tasks_held: float
    scale: float                              # jobs represented per simulated job
    lost_fraction: float = math.nan           # work thrown away by evictions and holds / GPU-hours used
    # the share of the pool's GPUs the simulated jobs held on average until the last result (a
    # throughput-bound slice holds the share the whole campaign would)
    gpu_share: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"time_to_results_hours": self.time_to_results_hours,
                "goodput_fraction": self.goodput_fraction, "lost_fraction": self.lost_fraction,
                "evictions_per_task": self.evictions_per_task, "tasks_held": self.tasks_held,
                "jobs_per_simulated_job": self.scale, "gpu_share": self.gpu_share}


def background(pool: Pool, load: float, speeds: dict[str, float]) -> list[dict[str, Any]]:
    """Other users' jobs, sized to keep `load` of the GPUs they can reach busy: the shared GPUs
    (BACKGROUND_USERS users), and, where the pool has owned GPUs, the part of those their owners
    leave idle (`owner_busy_fraction`) with resumable jobs (BACKFILL_USERS more users) that
    compete for backfill under fair share like the workload's own."""
    if load <= 0:
        return []
    base: dict[str, Any] = {"gpus": 1, "cpus": 1, "memory_gb": 4}
    if pool.default_tier is not None:
        base["job_length"] = pool.default_tier.name
    out = []
    shared = sum(s.count * speeds.get(s.gpu, 1.0) for s in pool.slots if not s.backfill_only)
    if shared > 0:
        out.append(_users("other-users", BACKGROUND_USERS, load * shared, BACKGROUND_MEAN_HOURS,
                          BACKGROUND_CV, base))
    idle_owned = (1.0 - pool.owner_busy_fraction) * sum(
        s.count * speeds.get(s.gpu, 1.0) for s in pool.slots if s.backfill_only)
    if idle_owned > 0:
        out.append(_users("other-users-backfill", BACKFILL_USERS, load * idle_owned,
                          BACKFILL_MEAN_HOURS, BACKFILL_CV, {**base, "is_resumable": True}))
    return out


def _users(name: str, users: int, busy_gpus: float, mean_hours: float, cv: float,
           request: dict[str, Any]) -> dict[str, Any]:
    """A background entry: `users` users whose lognormal jobs keep `busy_gpus` (reference-GPU
    equivalents) busy on average (arrival rate × mean work = busy GPUs)."""
    return {"name": name, "users": users,
            "arrival": {"dist": "exponential", "mean": mean_hours / busy_gpus},
            "work_hours": {"dist": "lognormal", "mean": mean_hours, "cv": cv},
            "request": request}


def background_text(pool: Pool, load: float) -> str:
    """The assumption every simulated outcome rests on, in words."""
    text = (f"other users keep {load:.0%} of the shared GPUs busy ({BACKGROUND_USERS} users, jobs "
            f"lognormal with mean {BACKGROUND_MEAN_HOURS:g} h, cv {BACKGROUND_CV:g})")
    if any(s.backfill_only for s in pool.slots):
        text += (f"; owners use their own GPUs {pool.owner_busy_fraction:.0%} of the time and "
                 f"{BACKFILL_USERS} more users keep {load:.0%} of the rest busy with resumable "
                 f"jobs (mean {BACKFILL_MEAN_HOURS:g} h, cv {BACKFILL_CV:g}); your jobs compete "
                 "with both under fair share")
    return text + "; change with --background-load"


def simulated_slice(jobs: int, work: float, interval_hours: float | None,
                    speed: float = 1.0) -> tuple[int, float]:
    """(jobs, work per job in reference hours) to simulate for `jobs` jobs of `work` hours each,
    within the bounds above; the caller scales the time by (jobs × work) / (simulated jobs ×
    simulated work). Only a checkpointing job's work is shortened."""
    sim_jobs = max(1, min(jobs, MAX_SIM_JOBS))
    sim_work = work
    budget = MAX_SIM_WORK_HOURS
    if interval_hours:
        run = max(interval_hours * max(speed, 1e-6), 1e-6)    # one run's work, reference hours
        budget = min(budget, MAX_SIM_RUNS * run)
        floor = MIN_SIM_RUNS_PER_JOB * run
        sim_work = min(work, max(MAX_SIM_JOB_HOURS, floor) if work > MAX_SIM_JOB_HOURS else work)
        if sim_jobs * sim_work > budget:
            sim_work = min(sim_work, max(budget / sim_jobs, floor))
    if sim_jobs * sim_work > budget:
        sim_jobs = max(1, int(budget // max(sim_work, 1e-9)))
    return sim_jobs, sim_work


def scenario_for(space: Space, cand: Candidate, pool_ref: Any, load: float,
                 gpu_memory_gb: float, memory_gb: float, cpus: int,
                 reference_gpu: str) -> tuple[Scenario, float]:
    w = space.workload
    jobs = math.ceil(w.tasks / cand.items_per_job)
    usable = [o for o in space.options if o.fits and o.task_hours]
    # Work per job in hours on the catalog's reference GPU: hours on a GPU × that GPU's speed
    # (speeds are relative to the reference GPU).
    ref_hours = (usable[0].task_hours or 0.0) * usable[0].speed if usable else 0.0
    work = cand.items_per_job * ref_hours + JOB_STARTUP_S / 3600 * (usable[0].speed if usable else 1.0)
    speeds = {o.gpu: max(o.speed, 1e-6) for o in space.options}
    request: dict[str, Any] = {
        "gpus": max(1, w.per_task.gpus), "cpus": cpus, "memory_gb": memory_gb,
        "gpu_memory_gb": gpu_memory_gb, "min_capability": cand.min_capability,
        "is_resumable": cand.is_resumable,
    }
    if cand.job_length:
        request["job_length"] = cand.job_length
    if cand.cpu_ok and w.per_task.cpu_hours:
        request.update({"cpu_ok": True, "cpu_hours": cand.items_per_job * w.per_task.cpu_hours})
    costs: CheckpointCosts = space.costs
    checkpoint: dict[str, Any] = {"mode": "none"}
    if cand.checkpoint_interval_hours:
        checkpoint = {"mode": "exit", "interval_minutes": cand.checkpoint_interval_hours * 60,
                      "cost_seconds": costs.cost_hours * 3600,
                      "restart_seconds": costs.restart_hours * 3600,
                      "saves_on_sigterm": costs.saves_on_sigterm}
    speed = usable[0].speed if usable else 1.0
    sim_jobs, sim_work = simulated_slice(jobs, work, cand.checkpoint_interval_hours, speed)
    scale = (jobs / sim_jobs) * (work / sim_work)
    d: dict[str, Any] = {
        "name": cand.label, "seed": 1, "warmup_hours": WARMUP_HOURS, "pool": pool_ref,
        "workload": {"name": w.name, "tasks": sim_jobs, "start_hours": WARMUP_HOURS,
                     "work_hours": {"dist": "fixed", "value": max(sim_work, 1e-6)},
                     "reference_gpu": reference_gpu,
                     "speed": speeds,
                     "request": request, "checkpoint": checkpoint},
    }
    bg = background(space.pool, load, speeds)
    if bg:
        d["background"] = bg
    return Scenario.from_dict(d, source=f"candidate {cand.label}"), scale


def evaluate(scenario: Scenario, scale: float, replications: int, seed: int,
             scheduler: str | None = None) -> Outcome:
    """Run the replications in this process (each is small; the same seeds for every candidate),
    or on the Dask scheduler at `scheduler` (the same runs, in the same order)."""
    if scheduler is None:
        runs = [run_summary(scenario, ss) for ss in replication_seeds(seed, replications)]
    else:
        from simulator.replicate import run_replications

        runs = run_replications([scenario], replications, seed, scheduler=scheduler)[0]
    ttr = np.array([r["makespan_hours"] * scale if r["tasks_held"] == 0 and
                    r["tasks_completed"] == r["tasks"] else math.inf for r in runs], dtype=float)
    finite = ttr[np.isfinite(ttr)]
    if len(finite) == len(ttr) and len(ttr) > 1:
        from simulator.replicate import interval
        ci = interval(list(ttr))
        stats = {"mean": float(ttr.mean()), "p90": float(np.percentile(ttr, 90)),
                 "ci95_low": ci["ci95_low"], "ci95_high": ci["ci95_high"]}
    elif len(finite) == len(ttr):
        stats = {"mean": float(ttr.mean()), "p90": float(ttr.max()),
                 "ci95_low": float(ttr.min()), "ci95_high": float(ttr.max())}
    else:
        stats = {"mean": math.inf, "p90": math.inf, "ci95_low": math.inf, "ci95_high": math.inf}
    return Outcome(
        time_to_results_hours=stats,
        goodput_fraction=float(np.nanmean([r["goodput_fraction"] for r in runs])),
        evictions_per_task=float(np.nanmean([r["evictions_per_task"] for r in runs])),
        tasks_held=float(np.mean([r["tasks_held"] for r in runs])) * scale,
        scale=scale,
        lost_fraction=_lost_fraction(runs),
        gpu_share=_mean_finite([r.get("gpu_share", math.nan) for r in runs]),
    )


def _mean_finite(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _lost_fraction(runs: list[dict[str, Any]]) -> float:
    """Lost GPU-hours over all GPU-hours the workload used, over the replications."""
    used = sum(r["good_gpu_hours"] + r["lost_gpu_hours"] + r["overhead_gpu_hours"] for r in runs)
    return sum(r["lost_gpu_hours"] for r in runs) / used if used > 0 else math.nan


ProgressFn = Callable[[int, int, str], None]
