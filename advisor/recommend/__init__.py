"""What to put in the submit file: the request, the tier, backfill, the checkpoint interval,
items per job, and the expected time-to-results, chosen by simulating every candidate.

`recommend(workload, pool_ref)` assesses the workload, sizes the request from measurements
(`advisor.recommend.sizing`), enumerates candidates (`candidates`), simulates each on the pool
with common random numbers (`evaluate`), refines around the best, and returns every candidate
with the chosen one marked, the objective and the defaults it assumed. `write_job_files` turns
the choice into an HTCondor submit file (with the checkpoint wrapper), a Slurm script or a
Kubernetes Job.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from advisor.assess import Assessment, assess
from advisor.check.secrets import scrub_args
from advisor.emit.quote import shell_command
from advisor.errors import ConfigError, InputError, nearest
from advisor.recommend.candidates import (
    Candidate,
    CheckpointCosts,
    Space,
    describe_daly,
    enumerate_candidates,
    refinements,
)
from advisor.recommend.evaluate import (
    BACKGROUND_CV,
    BACKGROUND_MEAN_HOURS,
    BACKGROUND_USERS,
    MAX_SIM_JOBS,
    Outcome,
    evaluate,
    scenario_for,
)
from advisor.recommend.jobfiles import plan_job
from advisor.recommend.jobfiles import write_job_files as write_job_files
from advisor.recommend.sizing import HOST_HEADROOM, Sizing, size_request
from advisor.request import JobSpec, Request
from advisor.units import fmt_hours
from advisor.workload import Workload
from simulator.catalog import Catalog, load_catalog
from simulator.pool import Pool, load_pool
from simulator.scenario import Scenario

OBJECTIVES = ("mean", "p90")
DEFAULT_BACKGROUND_LOAD = 0.6


@dataclass
class Evaluated:
    candidate: Candidate
    outcome: Outcome | None
    chosen: bool = False

    def to_dict(self) -> dict[str, Any]:
        c = self.candidate
        d: dict[str, Any] = {
            "label": c.label, "gpus_minimum_capability": c.min_capability or None,
            "job_length": c.job_length, "is_resumable": c.is_resumable,
            "checkpoint_interval_minutes": None if c.checkpoint_interval_hours is None
            else round(c.checkpoint_interval_hours * 60, 1),
            "items_per_job": c.items_per_job, "cpu_ok": c.cpu_ok,
            "feasible": c.why_not is None and self.outcome is not None
            and math.isfinite(self.outcome.time_to_results_hours["mean"]),
            "why_not": c.why_not, "chosen": self.chosen,
        }
        if self.outcome is not None:
            d.update(self.outcome.to_dict())
            if not math.isfinite(self.outcome.time_to_results_hours["mean"]):
                d["why_not"] = d["why_not"] or "jobs were held at the tier limit in the simulation"
        return d


@dataclass
class Recommendation:
    workload: str
    pool: str
    verdict: str
    reasons: list[str]
    request: Request | None
    job: JobSpec | None
    expected: dict[str, Any]
    candidates: list[Evaluated]
    objective: str
    assumed: list[str]
    checkpoint: dict[str, Any]
    assessment: Assessment
    files: list[str] = field(default_factory=list)
    why: dict[str, str] = field(default_factory=dict)
    command: str | None = None
    data_dir: str | None = None     # the data the profiled script read (packed as an input)
    data_plan: dict[str, Any] = field(default_factory=dict)   # inputs, outputs, quotas, GPU-hours
    # How the candidates were simulated (for reports that simulate more of the same):
    space: Space | None = field(default=None, repr=False)
    sizing: Sizing | None = field(default=None, repr=False)
    simulate: Callable[[Candidate, float | None], tuple[Scenario, float]] | None = field(
        default=None, repr=False)

    def scenario_for(self, candidate: Candidate,
                     background_load: float | None = None) -> tuple[Scenario, float]:
        """The scenario (and jobs per simulated job) a candidate was, or would be, simulated in;
        `background_load` replaces the other users' load the recommendation assumed."""
        if self.simulate is None:
            raise ValueError("this recommendation simulated nothing (the workload is not a fit)")
        return self.simulate(candidate, background_load)

    @property
    def chosen(self) -> Evaluated | None:
        return next((e for e in self.candidates if e.chosen), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload, "pool": self.pool, "verdict": self.verdict,
            "reasons": self.reasons, "advice": self.assessment.advice,
            "request": None if self.request is None else self.request.to_dict(),
            "jobs": None if self.job is None else self.job.queue,
            "items_per_job": None if self.job is None else self.job.items_per_job,
            "expected": self.expected, "objective": self.objective,
            "candidates": [e.to_dict() for e in self.candidates],
            "checkpoint": self.checkpoint, "assumed": self.assumed, "why": self.why,
            "files": self.files, "data_plan": self.data_plan,
        }


def _choose(evaluated: list[Evaluated], objective: str) -> Evaluated | None:
    ok = [e for e in evaluated if e.outcome is not None
          and math.isfinite(e.outcome.time_to_results_hours[objective])]
    if not ok:
        return None
    # Ties (within 1%) go to the simpler request: fewer restrictions, no checkpointing, no backfill.
    def key(e: Evaluated) -> tuple[float, int]:
        assert e.outcome is not None
        c = e.candidate
        simple = (c.checkpoint_interval_hours is not None) + c.is_resumable + (c.min_capability > 0) + c.cpu_ok
        return (round(e.outcome.time_to_results_hours[objective], 2), simple)
    best = min(ok, key=key)
    assert best.outcome is not None
    ttr = best.outcome.time_to_results_hours
    # Differences inside the best candidate's own noise (half its 95% interval, at least 1%)
    # are ties: a simpler request is worth more than a gain the simulation cannot resolve.
    half = (ttr["ci95_high"] - ttr["ci95_low"]) / 2 if math.isfinite(ttr["ci95_high"]) else 0.0
    target = ttr[objective] + max(0.01 * ttr[objective], half)
    near = [e for e in ok if e.outcome is not None
            and e.outcome.time_to_results_hours[objective] <= target]
    return min(near, key=lambda e: (key(e)[1], key(e)[0]))


def recommend(workload: Workload, pool_ref: str | Path, *, catalog: Catalog | None = None,
              objective: str = "mean", replications: int = 4, seed: int = 1,
              background_load: float = DEFAULT_BACKGROUND_LOAD,
              progress: Callable[[int, int, str], None] | None = None) -> Recommendation:
    if objective not in OBJECTIVES:
        raise InputError("--objective", objective, "is not an objective.",
                         f"use one of: {', '.join(OBJECTIVES)}.", suggestions=nearest(objective, OBJECTIVES))
    if not 0 <= background_load < 1:
        raise InputError("--background-load", background_load, "must be in [0, 1).",
                         "give the busy fraction of the shared GPUs, e.g. 0.6.")
    if replications < 1:
        raise InputError("--replications", replications, "must be 1 or more.", "give e.g. 4.")
    catalog = catalog or load_catalog()
    pool = load_pool(pool_ref, catalog=catalog)
    a = assess(workload, pool, catalog)
    assumed = [
        f"other users keep {background_load:.0%} of the shared GPUs busy ({BACKGROUND_USERS} users, "
        f"jobs lognormal with mean {BACKGROUND_MEAN_HOURS:g} h, cv {BACKGROUND_CV:g}); "
        "change with --background-load",
        f"{replications} simulated replications per candidate with common random numbers (seed {seed})",
    ]
    if workload.notes:
        assumed.append(workload.notes)
    contention = (workload.profile_data or {}).get("contention") or {}
    if contention.get("disturbed"):  # never let a disturbed profile advise silently
        assumed.insert(0, "the profile was measured on a busy machine ("
                       f"{contention.get('reason') or 'other processes competed for its CPUs'}): "
                       "its step and loading times are uncertain; profile again on a quiet one")
    assumed.extend(pool.assumptions)
    empty = Recommendation(workload.name, pool.name, a.verdict, a.reasons, None, None, {}, [],
                           objective, assumed, {}, a)
    if a.verdict == "not-a-fit":
        return empty
    usable = [o for o in a.options if o.fits and o.task_hours is not None]
    if not usable:
        return empty
    items = int(a.facts.get("batching", {}).get("items_per_job", 1))
    sizing = size_request(workload, usable, items, pool)
    space = Space(workload=workload, pool=pool, options=a.options, gate=sizing.gate_capability,
                  items_per_job=items, costs=CheckpointCosts.of(workload))
    gpu_mem_gb = (sizing.gpus_minimum_memory_mb or 0) / 1024
    mem_gb = sizing.request_memory_mb / 1024

    def simulate(c: Candidate, load: float | None = None) -> tuple[Scenario, float]:
        return scenario_for(space, c, pool_ref, background_load if load is None else load,
                            gpu_mem_gb, mem_gb, sizing.request_cpus, catalog.reference.name)

    def run_one(c: Candidate) -> Evaluated:
        if c.why_not is not None:
            return Evaluated(c, None)
        try:
            scenario, scale = simulate(c)
        except ConfigError as exc:  # the candidate's request matches no slot of the pool
            return Evaluated(replace(c, why_not=f"matches no slot: {exc.problem}"), None)
        return Evaluated(c, evaluate(scenario, scale, replications, seed))

    todo = enumerate_candidates(space)
    evaluated: list[Evaluated] = []
    total = len(todo) + 4
    for i, c in enumerate(todo):
        if progress:
            progress(i, total, c.label)
        evaluated.append(run_one(c))
    best = _choose(evaluated, objective)
    if best is not None:
        seen = {e.candidate for e in evaluated}
        for c in refinements(space, best.candidate):
            if c not in seen:
                if progress:
                    progress(len(evaluated), total, c.label)
                evaluated.append(run_one(c))
        best = _choose(evaluated, objective)
    if progress:
        progress(total, total, "done")
    if best is None or best.outcome is None:
        empty.candidates = evaluated
        empty.reasons = a.reasons + ["No candidate finished all its jobs in the simulation."]
        return empty
    best.chosen = True
    c = best.candidate
    why = dict(sizing.reasons)
    cap = max(c.min_capability, sizing.gate_capability or 0.0) or None
    if c.min_capability and c.min_capability > (sizing.gate_capability or 0):
        fits = [o for o in usable if o.capability >= (sizing.gate_capability or 0)]
        kept = sum(o.shared + o.backfill for o in fits if o.capability >= c.min_capability)
        total = sum(o.shared + o.backfill for o in fits)
        why["gpus_minimum_capability"] = (f"the simulation finished sooner when slower GPUs (below "
                                          f"{c.min_capability:g}) were left out, beyond the noise of the "
                                          f"simulation; it costs {total - kept} of the {total} GPUs the job "
                                          f"could run on (floor {sizing.gate_capability or 0:g})")
    request = Request(
        request_cpus=sizing.request_cpus, request_memory_mb=sizing.request_memory_mb,
        request_disk_mb=sizing.request_disk_mb, request_gpus=max(1, workload.per_task.gpus),
        gpus_minimum_capability=cap, gpus_minimum_memory_mb=sizing.gpus_minimum_memory_mb,
        job_length=c.job_length, is_resumable=c.is_resumable,
        checkpoint_interval_minutes=None if c.checkpoint_interval_hours is None
        else round(c.checkpoint_interval_hours * 60),
    )
    jobs = math.ceil(workload.tasks / c.items_per_job)
    considered = space.considered(c.min_capability, c.is_resumable)
    slowest = max(space.job_hours(o, c.items_per_job) for o in considered)
    tier = pool.tier(c.job_length) if c.job_length else None
    if c.job_length:
        why["job_length"] = (f"runs of up to {fmt_hours(slowest if not c.checkpoint_interval_hours else c.checkpoint_interval_hours)}"
                             f" fit the {c.job_length} tier ({fmt_hours(tier.max_hours) if tier else '?'})")
    if c.is_resumable:
        why["is_resumable"] = "backfill on research groups' GPUs finished sooner in the simulation"
    job, plan = plan_job(workload, pool, request, sizing, c.items_per_job, jobs, slowest, tier, why)
    verdict, reasons = a.verdict, list(a.reasons)
    if verdict == "htc-able-with-checkpointing" and c.checkpoint_interval_hours is None:
        verdict = "htc-able"
        reasons.insert(0, f"The simulation found a plan without checkpointing: on GPUs of capability "
                       f"≥ {c.min_capability:g} every job fits the {c.job_length} tier, and this "
                       "finished soonest.")
    elif verdict == "htc-able" and c.checkpoint_interval_hours is not None and not a.facts.get("batching"):
        reasons.insert(0, "Checkpointing is optional here, but it finished sooner in the simulation "
                       "(backfill evictions then lose little work).")
    reasons += [f"Talk to a facilitator: {f}." for f in plan.facilitator]
    ttr = best.outcome.time_to_results_hours
    expected = {"time_to_results_hours": {"mean": ttr["mean"], "p90": ttr["p90"],
                                          "ci95_low": ttr["ci95_low"], "ci95_high": ttr["ci95_high"]},
                "jobs": jobs, "job_hours_on_slowest_gpu": slowest,
                "goodput_fraction": best.outcome.goodput_fraction, "gpu_hours": round(plan.gpu_hours, 1),
                "evictions_per_job": best.outcome.evictions_per_task}
    if best.outcome.scale > jobs / min(jobs, MAX_SIM_JOBS) * 1.000001:
        assumed.append(f"a slice of the campaign was simulated ({best.outcome.scale:.3g} times less "
                       "work: fewer jobs and checkpoint intervals) and the time scaled")
    elif jobs > MAX_SIM_JOBS:
        assumed.append(f"{MAX_SIM_JOBS:,} of the {jobs:,} jobs were simulated and the time scaled "
                       "(throughput-bound regime)")
    assumed.append(f"request_memory has {HOST_HEADROOM:.0%} headroom over the measured host peak"
                   if workload.profile_data is not None else "memory, disk and GPU memory as stated in the workload")
    return Recommendation(workload.name, pool.name, verdict, reasons, request, job, expected,
                          evaluated, objective, assumed, _checkpoint_story(space, c, pool), a, why=why,
                          command=task_command(workload),
                          data_dir=_profiled_data_path(workload), data_plan=plan.to_dict(),
                          space=space, sizing=sizing, simulate=simulate)


def _checkpoint_story(space: Space, c: Candidate, pool: Pool) -> dict[str, Any]:
    story: dict[str, Any] = {"interval_minutes": None if c.checkpoint_interval_hours is None
                             else round(c.checkpoint_interval_hours * 60),
                             "cost_seconds": round(space.costs.cost_hours * 3600),
                             "restart_seconds": round(space.costs.restart_hours * 3600)}
    daly = describe_daly(space, c.min_capability, c.is_resumable)
    if daly:
        story["daly"] = daly
    guidance = pool.checkpoint_guidance
    if c.checkpoint_interval_hours is None:
        story["explanation"] = ("No checkpointing: every job finishes within its tier "
                                + ("and evictions cost less than checkpointing would."
                                   if daly else "and the slots it uses are not preempted."))
        return story
    tau = c.checkpoint_interval_hours
    text = f"Checkpoint every {fmt_hours(tau)}."
    if daly:
        text += (f" Daly's optimum for a mean time to eviction of {daly['mean_time_to_eviction_hours']:g} h "
                 f"and a {daly['checkpoint_cost_hours'] * 3600:.0f} s checkpoint is "
                 f"{fmt_hours(daly['daly_interval_hours'])}; the simulation under the tier limits "
                 f"chose {fmt_hours(tau)}.")
    else:
        text += " No evictions on the slots it uses: the interval only has to keep each run inside its tier."
    if guidance is not None:
        lo, hi = guidance.min_hours, guidance.max_hours
        advised = f"{pool.name}'s {lo:g}–{hi:g} h guidance"
        if tau < lo:
            text += (f" That is shorter than {advised}: the checkpoint is cheap "
                     f"({space.costs.cost_hours * 3600:.0f} s), so frequent checkpoints cost little "
                     "while evictions are frequent.")
        elif tau > hi:
            text += (f" That is longer than {advised}: nothing evicts these jobs, "
                     "so each checkpoint only costs time"
                     + (f"; keep it under the {guidance.hard_max_hours:g} h maximum."
                        if guidance.hard_max_hours is not None else "."))
        else:
            text += f" That lies within {advised}."
    story["explanation"] = text
    return story


def _profiled_data_path(workload: Workload) -> str | None:
    data = (workload.profile_data or {}).get("data") or {}
    return str(data["path"]) if data.get("path") else None


def task_command(workload: Workload) -> str | None:
    """For a profiled script: the command that runs it as profiled."""
    prof = workload.profile_data
    if prof is None or prof.get("mode", "torch") != "torch":
        return None
    script = Path(str(prof.get("script", "train.py"))).name
    args, _found = scrub_args([str(a) for a in (prof.get("args") or [])])  # also older profiles
    data = str((prof.get("data") or {}).get("path") or "")
    if data and Path(data).name and Path(data).name != data:
        # The job unpacks the data archive in its sandbox: the script reads it by its relative name.
        local = Path(data).name
        args = [local if a == data else a[:-len(data)] + local if a.endswith("=" + data) else a
                for a in args]
    return "python3 " + shell_command([script, *args])
