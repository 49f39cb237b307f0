"""The candidate requests the recommender weighs, and the scenario that tests each.

A candidate fixes: the capability floor (which GPU generations the job accepts), the length
tier, backfill (`+is_resumable`), the checkpoint interval (or none), items per job, and whether
CPU slots are accepted too. Per candidate the pool is simulated with the same random numbers
(common random numbers): only the policy differs.

Checkpointing is exit-driven (HTCondor `checkpoint_exit_code`): after τ hours of work the job
writes its checkpoint (δ), exits and is matched again, paying R on the next start (fetching the
checkpoint, loading the model). δ and R come from the checkpoint size over an assumed transfer
rate; τ starts from Daly's optimum for the eviction rate of the slots the job may land on.

The interval is chosen over the whole range that matters: the first round tries Daly's optimum
and the longest run the shortest tier allows; around the best checkpointing candidate the
refinements sweep the pool's own guidance (`pool.checkpoint_guidance`, CHTC: 1-5 h, as 1, 2, 3,
5 h), half and double the best interval, Daly's optimum and the tier bound, all with the same
random numbers. The explain stage recommends an interval outside the guidance only when it beats
every candidate inside it beyond the noise (`advisor.recommend.explain.within_guidance`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from advisor.assess.rules import JOB_STARTUP_S, TRANSFER_GBPS
from advisor.assess.runtime import GpuOption
from advisor.workload import Workload
from simulator.pool import CheckpointGuidance, Pool
from simulator.theory import daly_interval, young_interval

TIER_MARGIN = 1.15              # a run must fit its tier with 15% to spare
CHECKPOINT_WRITE_S = 30.0       # assumption: serialize + stop, beyond the transfer
MIN_INTERVAL_H = 10 / 60
# A pool without length tiers lets a job run unbounded; a run longer than this without a
# checkpoint is not simulated (its span alone would take the simulation hours), and such jobs
# are offered a daily checkpoint instead.
MAX_UNCHECKPOINTED_RUN_H = 2000.0
LONG_RUN_INTERVAL_H = 24.0


@dataclass(frozen=True)
class Candidate:
    min_capability: float
    job_length: str | None
    is_resumable: bool
    checkpoint_interval_hours: float | None
    items_per_job: int = 1
    cpu_ok: bool = False
    why_not: str | None = None          # set when the candidate cannot work (not simulated)

    @property
    def label(self) -> str:
        parts = [f"cc≥{self.min_capability:g}" if self.min_capability else "any GPU"]
        if self.job_length:
            parts.append(self.job_length)
        parts.append("backfill" if self.is_resumable else "no backfill")
        parts.append(f"ckpt {self.checkpoint_interval_hours * 60:.0f} min"
                     if self.checkpoint_interval_hours else "no ckpt")
        if self.items_per_job > 1:
            parts.append(f"{self.items_per_job} items/job")
        if self.cpu_ok:
            parts.append("+CPU slots")
        return " · ".join(parts)


@dataclass(frozen=True)
class CheckpointCosts:
    cost_hours: float       # δ: write + transfer out
    restart_hours: float    # R: transfer in + load, on every start but the first
    # the program saves on an eviction's SIGTERM (the emitted wrapper forwards it, and a
    # checkpointing job's submit file keeps the save: ON_EXIT_OR_EVICT, checkpoints in
    # transfer_output_files), so an eviction loses no work when the save fits in the grace
    saves_on_sigterm: bool = False

    @classmethod
    def of(cls, workload: Workload, *, saves_on_sigterm: bool = False) -> CheckpointCosts:
        gb = workload.per_task.checkpoint_gb or 0.0
        transfer_s = gb / TRANSFER_GBPS
        return cls(cost_hours=(CHECKPOINT_WRITE_S + transfer_s) / 3600,
                   restart_hours=(JOB_STARTUP_S + transfer_s) / 3600,
                   saves_on_sigterm=saves_on_sigterm)


@dataclass
class Space:
    """What the enumeration needs to know about the workload on this pool."""

    workload: Workload
    pool: Pool
    options: list[GpuOption]
    gate: float | None
    items_per_job: int
    costs: CheckpointCosts
    notes: list[str] = field(default_factory=list)

    def considered(self, floor: float, resumable: bool) -> list[GpuOption]:
        return [o for o in self.options if o.fits and o.task_hours is not None
                and o.capability >= floor and (o.shared or (resumable and o.backfill))]

    def job_hours(self, option: GpuOption, items: int) -> float:
        return items * (option.task_hours or 0.0) + JOB_STARTUP_S / 3600

    def mean_time_to_eviction(self, floor: float, resumable: bool) -> float | None:
        means = [s.time_to_eviction.mean for s in self.pool.slots
                 if s.time_to_eviction is not None and s.capability >= floor
                 and (resumable or not s.backfill_only)]
        return min(means) if means else None


def capability_floors(space: Space) -> list[float]:
    """The floors worth trying: the gate (or none), then each faster generation that fits."""
    base = space.gate or 0.0
    caps = sorted({o.capability for o in space.options if o.fits and o.capability >= base})
    # A floor at or below the slowest usable generation excludes nothing: it is the base.
    floors = [base] + [c for c in caps[1:] if c > base]
    # Keep floors that still leave GPUs to run on; at most four (the fastest floors hold few GPUs).
    kept = [f for f in floors if space.considered(f, True)]
    return kept[:4]


def intervals(space: Space, floor: float, resumable: bool, tier_hours: float | None) -> list[float]:
    """Checkpoint intervals (hours) to try: Daly's optimum for the eviction rate, and the longest
    run the shortest tier allows."""
    w = space.workload
    if not w.can_checkpoint:
        return []
    out: list[float] = []
    mtte = space.mean_time_to_eviction(floor, resumable)
    delta, restart = space.costs.cost_hours, space.costs.restart_hours
    if mtte is not None:
        out.append(max(MIN_INTERVAL_H, daly_interval(delta, mtte)))
    if tier_hours is not None:
        out.append(max(MIN_INTERVAL_H, tier_hours / TIER_MARGIN - delta - restart))
    fastest = max((space.job_hours(o, space.items_per_job)
                   for o in space.considered(floor, resumable)), default=0.0)
    if tier_hours is None and fastest > MAX_UNCHECKPOINTED_RUN_H:
        out.append(LONG_RUN_INTERVAL_H)
    out = [t for t in out if t < fastest]        # an interval longer than the job never fires
    return sorted({round(t, 3) for t in out})


def guidance_intervals(guidance: CheckpointGuidance | None) -> list[float]:
    """The intervals (hours) that stand for the pool's advised range: its ends and the whole hours
    nearest two points spaced geometrically between them (CHTC's 1-5 h: 1, 2, 3, 5 h)."""
    if guidance is None:
        return []
    lo, hi = guidance.min_hours, guidance.max_hours
    if hi <= lo:
        return [lo]
    ratio = hi / lo
    inner = {round(lo * ratio ** (k / 3)) for k in (1, 2)}
    return sorted({lo, hi} | {float(x) for x in inner if lo < x < hi})


def in_guidance(interval_hours: float | None, guidance: CheckpointGuidance | None) -> bool:
    """Whether a checkpoint interval lies in the pool's advised range (no checkpoint, or a pool
    that advises nothing: True)."""
    if interval_hours is None or guidance is None:
        return True
    return guidance.min_hours - 1e-6 <= interval_hours <= guidance.max_hours + 1e-6


def checkpoint_tier(space: Space, floor: float, resumable: bool, tau: float) -> tuple[str | None, str | None]:
    """(the tier, why not) for a job checkpointing by exit 85 every `tau` hours. The tier clock
    is the claim's and keeps running across in-place restarts (docs/DOMAIN.md §3): an
    `+is_resumable` job in a pool that vacates it at the limit needs only each run to fit; any
    other job must fit its tier whole, restarts included, on the slowest GPU it accepts."""
    pool = space.pool
    if not pool.tiers:
        return None, None
    costs = space.costs
    if pool.tier_clock == "run" or (resumable and pool.resumable_at_tier_limit == "vacate"):
        t = pool.shortest_tier((tau + costs.cost_hours + costs.restart_hours) * TIER_MARGIN)
        return (t.name, None) if t else (None, "no tier holds one run")
    slowest = max((space.job_hours(o, space.items_per_job) for o in space.considered(floor, resumable)),
                  default=0.0)
    whole = slowest + math.ceil(slowest / tau) * (costs.cost_hours + costs.restart_hours)
    t = pool.shortest_tier(whole * TIER_MARGIN)
    if t is not None:
        return t.name, None
    longest = max(pool.tiers, key=lambda x: x.max_hours)
    return longest.name, (f"the tier clock keeps running across exit-85 restarts: a {whole:.1f} h job "
                          f"would be held at the {longest.name} tier's {longest.max_hours:g} h limit"
                          + (" (+is_resumable jobs are vacated and requeued instead)"
                             if pool.resumable_at_tier_limit == "vacate" else ""))


def _with_interval(space: Space, best: Candidate, tau: float) -> Candidate | None:
    """`best` with checkpoint interval `tau`, on the tier it needs (`checkpoint_tier`; None when
    no tier holds it or the interval is below the minimum)."""
    if tau < MIN_INTERVAL_H:
        return None
    tier, why_not = checkpoint_tier(space, best.min_capability, best.is_resumable, tau)
    if why_not is not None:
        return None
    return Candidate(best.min_capability, tier, best.is_resumable,
                     round(tau, 3), best.items_per_job, best.cpu_ok)


def interval_sweep(space: Space, best: Candidate) -> list[Candidate]:
    """`best`'s policy (floor, backfill, items per job) at every checkpoint interval that matters:
    the pool's guidance, Daly's optimum and the tier bound for its slots (each only when the job
    runs longer than the interval), whether or not `best` itself checkpoints."""
    if not space.workload.can_checkpoint:
        return []
    shortest = min(space.pool.tiers, key=lambda t: t.max_hours) if space.pool.tiers else None
    taus = set(guidance_intervals(space.pool.checkpoint_guidance))
    taus |= set(intervals(space, best.min_capability, best.is_resumable,
                          shortest.max_hours if shortest else None))
    fastest = max((space.job_hours(o, best.items_per_job)
                   for o in space.considered(best.min_capability, best.is_resumable)), default=0.0)
    out = []
    for tau in sorted(taus):
        c = _with_interval(space, best, tau) if tau < fastest else None
        if c is not None:
            out.append(c)
    return out


def enumerate_candidates(space: Space) -> list[Candidate]:
    pool, w = space.pool, space.workload
    shortest = min(pool.tiers, key=lambda t: t.max_hours) if pool.tiers else None
    has_backfill = any(s.backfill_only for s in pool.slots)
    out: list[Candidate] = []
    for floor in capability_floors(space):
        for resumable in ([False, True] if has_backfill else [False]):
            opts = space.considered(floor, resumable)
            if not opts:
                continue
            slowest = max(space.job_hours(o, space.items_per_job) for o in opts)
            tier = pool.shortest_tier(slowest * TIER_MARGIN) if pool.tiers else None
            if not pool.tiers and slowest > MAX_UNCHECKPOINTED_RUN_H:
                out.append(Candidate(floor, None, resumable, None, space.items_per_job,
                                     why_not=f"a {slowest:.1f} h run without a checkpoint is "
                                     f"beyond the {MAX_UNCHECKPOINTED_RUN_H:g} h the simulation "
                                     "models; checkpoint it"))
            elif pool.tiers and tier is None:
                longest = max(pool.tiers, key=lambda t: t.max_hours)
                out.append(Candidate(floor, longest.name, resumable, None, space.items_per_job,
                                     why_not=f"a {slowest:.1f} h job on the slowest accepted GPU "
                                     f"would be held at the {longest.name} tier's "
                                     f"{longest.max_hours:g} h limit"))
            else:
                out.append(Candidate(floor, tier.name if tier else None, resumable, None,
                                     space.items_per_job))
            for tau in intervals(space, floor, resumable, shortest.max_hours if shortest else None):
                tier_name, why = checkpoint_tier(space, floor, resumable, tau)
                out.append(Candidate(floor, tier_name, resumable, tau, space.items_per_job, why_not=why))
    if w.per_task.cpu_hours and pool.cpu_slots is not None and out:
        best = next((c for c in out if c.why_not is None), None)
        if best is not None:
            out.append(Candidate(best.min_capability, best.job_length, best.is_resumable,
                                 best.checkpoint_interval_hours, best.items_per_job, cpu_ok=True))
    return out


def refinements(space: Space, best: Candidate) -> list[Candidate]:
    """Around the best candidate: half and double its checkpoint interval and the interval sweep
    (`interval_sweep`: the pool's guidance, Daly, the tier bound), and half/double the items per
    job for many-item workloads."""
    out = []
    pool = space.pool
    if best.checkpoint_interval_hours:
        for factor in (0.5, 2.0):
            c = _with_interval(space, best, best.checkpoint_interval_hours * factor)
            if c is not None:
                out.append(c)
    # the interval curve, also when the best plan does not checkpoint (the trade-off is shown)
    out += [c for c in interval_sweep(space, best) if c not in out and c != best]
    if best.items_per_job > 1:
        for factor in (0.5, 2.0):
            items = max(1, int(round(best.items_per_job * factor)))
            opts = space.considered(best.min_capability, best.is_resumable)
            slowest = max(space.job_hours(o, items) for o in opts)
            t = pool.shortest_tier(slowest * TIER_MARGIN) if pool.tiers else None
            if pool.tiers and t is None:
                continue
            out.append(Candidate(best.min_capability, t.name if t else None, best.is_resumable,
                                 best.checkpoint_interval_hours, items, best.cpu_ok))
    return out


def describe_daly(space: Space, floor: float, resumable: bool) -> dict[str, Any] | None:
    mtte = space.mean_time_to_eviction(floor, resumable)
    if mtte is None:
        return None
    delta = space.costs.cost_hours
    return {"mean_time_to_eviction_hours": mtte, "checkpoint_cost_hours": delta,
            "restart_hours": space.costs.restart_hours,
            "daly_interval_hours": daly_interval(delta, mtte),
            "young_interval_hours": young_interval(delta, mtte)}
