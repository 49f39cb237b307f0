"""The plan stage of `recommend`: what to simulate.

`make_plan` checks the options, assesses the workload on the pool, sizes the request from the
measurements (`advisor.recommend.sizing`), and builds the candidate space
(`advisor.recommend.candidates.Space`) with the first round of candidates to simulate. A `Plan`
is plain data: the evaluate stage (`advisor.recommend.simulate`) simulates its candidates, the
explain stage (`advisor.recommend.explain`) turns the best one into a request, and whoever
simulates more of the same (the report) builds the scenario with `plan_scenario(plan, candidate)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from advisor.assess import Assessment, assess
from advisor.assess.runtime import GpuOption
from advisor.errors import InputError, nearest
from advisor.recommend.candidates import (
    Candidate,
    CheckpointCosts,
    Space,
    enumerate_candidates,
)
from advisor.recommend.evaluate import background_text, scenario_for
from advisor.recommend.sizing import Sizing, size_request
from advisor.workload import Workload, sigterm_save
from simulator.catalog import Catalog, load_catalog
from simulator.pool import Pool, load_pool
from simulator.scenario import Scenario

OBJECTIVES = ("mean", "p90")
DEFAULT_BACKGROUND_LOAD = 0.6
# After the first round the evaluate stage simulates the refinements around the best candidate
# (`candidates.refinements`): half and double its checkpoint interval, half and double its items
# per job, and the interval sweep (the pool's guidance, Daly's optimum, the tier bound). The
# progress total counts them before they are known: 2 intervals + 2 item counts + the sweep (at
# most 4 intervals for the guidance, `candidates.guidance_intervals`, + Daly + the tier bound).
MAX_REFINEMENTS = 4 + 4 + 2


@dataclass(frozen=True)
class Plan:
    """The workload on the pool, the sized request and the candidates to simulate.

    `space`, `sizing` and `candidates` are empty when nothing is simulated: the workload is not
    a fit, or no GPU of the pool fits it (`simulates` is then False)."""

    workload: Workload
    pool: Pool
    pool_ref: str | Path              # what the scenarios name as their pool
    reference_gpu: str                # the catalog's reference GPU (work is in its hours)
    objective: str
    replications: int
    seed: int
    background_load: float
    assessment: Assessment
    assumed: tuple[str, ...]          # the assumptions every outcome of this plan rests on
    usable: tuple[GpuOption, ...] = ()
    sizing: Sizing | None = field(default=None, repr=False)
    space: Space | None = field(default=None, repr=False)
    candidates: tuple[Candidate, ...] = ()

    @property
    def simulates(self) -> bool:
        return self.space is not None and self.sizing is not None

    @property
    def progress_total(self) -> int:
        """Steps the evaluate stage reports: the first round and the refinements at most."""
        return len(self.candidates) + MAX_REFINEMENTS


def check_options(objective: str, replications: int, background_load: float) -> None:
    if objective not in OBJECTIVES:
        raise InputError("--objective", objective, "is not an objective.",
                         f"use one of: {', '.join(OBJECTIVES)}.", suggestions=nearest(objective, OBJECTIVES))
    if not 0 <= background_load < 1:
        raise InputError("--background-load", background_load, "must be in [0, 1).",
                         "give the busy fraction of the shared GPUs, e.g. 0.6.")
    if replications < 1:
        raise InputError("--replications", replications, "must be 1 or more.", "give e.g. 4.")


def base_assumptions(workload: Workload, pool: Pool, background_load: float, replications: int,
                     seed: int, sigterm: tuple[bool, str] | None = None) -> list[str]:
    """What every simulated outcome assumes, before any candidate is chosen; `sigterm` is
    `sigterm_save(workload)` when the caller has it."""
    assumed = [
        background_text(pool, background_load),
        f"{replications} simulated replications per candidate with common random numbers (seed {seed})",
    ]
    if workload.can_checkpoint:
        saves, how = sigterm or sigterm_save(workload)
        assumed.append(
            f"an eviction's SIGTERM: the program saves a checkpoint ({how}) and a checkpointing "
            "job's submit file keeps it (ON_EXIT_OR_EVICT, checkpoints in transfer_output_files), "
            f"so an eviction loses no work when the save ends within the {pool.grace_seconds:g} s grace"
            if saves else
            f"an eviction loses the work since the last timed checkpoint: no save on SIGTERM is "
            f"assumed ({how})")
    if workload.notes:
        assumed.append(workload.notes)
    contention = (workload.profile_data or {}).get("contention") or {}
    if contention.get("disturbed"):  # never let a disturbed profile advise silently
        assumed.insert(0, "the profile was measured on a busy machine ("
                       f"{contention.get('reason') or 'other processes competed for its CPUs'}): "
                       "its step and loading times are uncertain; profile again on a quiet one")
    assumed.extend(pool.assumptions)
    return assumed


def make_plan(workload: Workload, pool_ref: str | Path, *, catalog: Catalog | None = None,
              objective: str = "mean", replications: int = 4, seed: int = 1,
              background_load: float = DEFAULT_BACKGROUND_LOAD) -> Plan:
    check_options(objective, replications, background_load)
    catalog = catalog or load_catalog()
    pool = load_pool(pool_ref, catalog=catalog)
    a = assess(workload, pool, catalog)
    sigterm = sigterm_save(workload)   # may read the profiled script: once per plan
    plan = Plan(workload=workload, pool=pool, pool_ref=pool_ref, reference_gpu=catalog.reference.name,
                objective=objective, replications=replications, seed=seed,
                background_load=background_load, assessment=a,
                assumed=tuple(base_assumptions(workload, pool, background_load, replications, seed,
                                               sigterm)))
    if a.verdict == "not-a-fit":
        return plan
    usable = tuple(o for o in a.options if o.fits and o.task_hours is not None)
    if not usable:
        return plan
    items = int(a.facts.get("batching", {}).get("items_per_job", 1))
    sizing = size_request(workload, list(usable), items, pool)
    space = Space(workload=workload, pool=pool, options=a.options, gate=sizing.gate_capability,
                  items_per_job=items, costs=CheckpointCosts.of(workload, saves_on_sigterm=sigterm[0]))
    return replace(plan, usable=usable, sizing=sizing, space=space,
                   candidates=tuple(enumerate_candidates(space)))


def plan_scenario(plan: Plan, candidate: Candidate,
                  background_load: float | None = None) -> tuple[Scenario, float]:
    """The scenario (and jobs per simulated job) `candidate` is simulated in under this plan;
    `background_load` replaces the other users' load the plan assumed. Raises ConfigError when the
    candidate's request matches no slot of the pool."""
    if plan.space is None or plan.sizing is None:
        raise ValueError("this plan simulates nothing (the workload is not a fit)")
    s = plan.sizing
    load = plan.background_load if background_load is None else background_load
    return scenario_for(plan.space, candidate, plan.pool_ref, load,
                        (s.gpus_minimum_memory_mb or 0) / 1024, s.request_memory_mb / 1024,
                        s.request_cpus, plan.reference_gpu)
