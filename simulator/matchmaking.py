"""Matchmaking: which slots a job may use, per-user limits, and fair share among users.

**Matching** (HTCondor's, simplified). A job needing `gpus` GPUs matches a slot class when the
GPU's capability ≥ `min_capability`, its memory ≥ `gpu_memory_gb`, and the job's CPUs, memory
and disk fit in the share of the server that comes with `gpus` GPUs (`gpus × cpus`, ...).
Slots owned by a research group take only `is_resumable` jobs (backfill). The GPUs of one job
come from one slot class. A job with `cpu_ok` may also run on the pool's CPU slots, using
`cpus` cores. Preference among matching classes: shared before owned, then faster first
(higher speed factor), then pool order.

**Per-user limits**: a length tier caps the *shared* GPUs one user holds in that tier at once
(a share of the pool's shared GPUs or an absolute count); owned GPUs used as backfill and CPU
slots do not count (CHTC's limits are shares of the GPU Lab). Fair share counts every GPU.

**Fair share**: each user's priority is their recent GPU usage, decayed exponentially with a
half-life (HTCondor's PRIORITY_HALFLIFE, 24 h by default): usage(t) = Σ GPUs in use, integrated
with weight 2^-(t-s)/half_life. When GPUs free up, the waiting job that can use them and whose
user has the lowest usage goes first; ties, and each user's own jobs, go in submission order
(an evicted job keeps its place). Without fair share (`fair_share: none`) the whole queue is
first come, first served. The matchmaker is event-driven: the engine asks it for a match on
every submission and every release; no process polls.
"""

from __future__ import annotations

import enum
import heapq
import math
from array import array
from dataclasses import dataclass

from simulator.distributions import Distribution
from simulator.errors import ConfigError
from simulator.pool import Pool, Tier
from simulator.scenario import CheckpointMode, Request, Scenario

LN2 = math.log(2.0)


@dataclass(frozen=True)
class Eligible:
    """One slot class a request may use: how many units (GPUs or cores) and how fast."""

    slot: int
    units: int
    speed: float
    counts_for_limit: bool  # a shared GPU: counts against the tier's per-user limit
    is_gpu: bool = True

    @property
    def usage(self) -> int:
        """2: shared GPU (per-user limit and fair share), 1: owned GPU (fair share), 0: CPU."""
        return 2 if self.counts_for_limit else (1 if self.is_gpu else 0)


@dataclass(frozen=True)
class SlotInfo:
    """A slot class as the engine sees it. The last one is the CPU slots, if the pool has any."""

    label: str
    gpu: str  # "CPU" for CPU slots
    units: int
    owned: bool
    is_cpu: bool
    eviction: Distribution | None
    max_hours: float | None  # CPU slots' runtime limit; GPU slots take the tier's


def slot_infos(scenario: Scenario) -> list[SlotInfo]:
    pool = scenario.pool
    out = [SlotInfo(s.label, s.gpu, s.count, s.backfill_only, False, scenario.slot_eviction(s), None)
           for s in pool.slots]
    if pool.cpu_slots is not None:
        cpu_eviction = scenario.eviction if scenario.eviction_given else None
        out.append(SlotInfo("CPU", "CPU", pool.cpu_slots.count, False, True, cpu_eviction,
                            pool.cpu_slots.max_hours))
    return out


def request_tier(pool: Pool, request: Request) -> Tier | None:
    return pool.tier(request.job_length) if request.job_length else pool.default_tier


def why_not(pool: Pool, request: Request, slot_index: int) -> str | None:
    """None if the request matches GPU slot class `slot_index`, else the reason it does not."""
    s = pool.slots[slot_index]
    g = request.gpus
    if s.capability < request.min_capability:
        return f"capability {s.capability:g} < {request.min_capability:g}"
    if s.gpu_memory_gb < request.gpu_memory_gb:
        return f"GPU memory {s.gpu_memory_gb:g} GB < {request.gpu_memory_gb:g} GB"
    if request.cpus > s.cpus * g:
        return f"{s.cpus * g} CPUs < {request.cpus}"
    if request.memory_gb > s.memory_gb * g:
        return f"memory {s.memory_gb * g:g} GB < {request.memory_gb:g} GB"
    if request.disk_gb > s.disk_gb * g:
        return f"disk {s.disk_gb * g:g} GB < {request.disk_gb:g} GB"
    if g > s.count:
        return f"only {s.count} GPUs"
    if s.backfill_only and not request.is_resumable:
        return f"owned by {s.owner} (backfill needs is_resumable)"
    if request.requires_backfill and not s.backfill_only:
        return "a shared GPU (the job requires backfill slots)"
    return None


def eligible(scenario: Scenario, request: Request, cpu_speed: float | None = None) -> list[Eligible]:
    """The slot classes `request` matches, in order of preference.

    `cpu_speed` is the task's speed on the CPU slots relative to the reference GPU (the
    engine derives it from `cpu_hours`); None keeps the job off CPU slots."""
    pool = scenario.pool
    speeds = dict(scenario.speed_factors)
    found = []
    for i, s in enumerate(pool.slots):
        if why_not(pool, request, i) is None:
            found.append((s.backfill_only, -speeds[s.gpu], i))
    out = [Eligible(i, request.gpus, speeds[pool.slots[i].gpu], not pool.slots[i].backfill_only)
           for _, _, i in sorted(found)]
    cpu = pool.cpu_slots
    if (request.cpu_ok and cpu is not None and cpu_speed is not None and not request.requires_backfill
            and request.memory_gb <= request.cpus * cpu.memory_gb and request.cpus <= cpu.count):
        out.append(Eligible(len(pool.slots), request.cpus, cpu_speed, False, is_gpu=False))
    return out


def workload_cpu_speed(scenario: Scenario) -> float | None:
    """Speed of a workload task on the CPU slots, relative to the reference GPU: a mean-sized
    task takes `cpu_hours / cpus` hours there (perfect scaling over its cores is assumed)."""
    w = scenario.workload
    r = w.request
    if not r.cpu_ok or r.cpu_hours is None:
        return None
    return w.work_hours.mean * r.cpus / r.cpu_hours if w.work_hours.mean > 0 else 1.0


def check_matchable(scenario: Scenario) -> None:
    """Refuse a scenario in which the workload or a background can never start."""
    pool = scenario.pool
    groups = [("workload.request", scenario.workload.request, workload_cpu_speed(scenario))]
    for i, b in enumerate(scenario.background):
        where = "background.request" if len(scenario.background) == 1 else f"background[{i}].request"
        groups.append((where, b.request, None))
    for where, req, cpu_speed in groups:
        tier = request_tier(pool, req)
        if not eligible(scenario, req, cpu_speed):
            reasons = sorted({f"{s.label}: {why_not(pool, req, i)}" for i, s in enumerate(pool.slots)})
            raise ConfigError(where, _request_text(req), f"matches no slot in pool {pool.name!r} ("
                              + "; ".join(reasons[:6]) + ").",
                              "lower the request (GPU memory, capability, CPUs, memory) or set "
                              "is_resumable: true to reach owned GPUs as backfill.")
        limit = tier.per_user_limit(pool.shared_gpus) if tier is not None else None
        if limit is not None and req.gpus > limit and not req.cpu_ok:
            raise ConfigError(f"{where}.gpus", req.gpus,
                              f"is more than the {tier.name!r} tier's per-user limit of {limit} GPUs."
                              if tier else "is over the per-user limit.",
                              "request fewer GPUs per job or pick another job_length tier.")


def _request_text(req: Request) -> dict[str, object]:
    return {"gpus": req.gpus, "gpu_memory_gb": req.gpu_memory_gb,
            "min_capability": req.min_capability, "cpus": req.cpus, "memory_gb": req.memory_gb}


class FairShare:
    """Decayed GPU usage per user; lower usage means better priority."""

    __slots__ = ("rate", "value", "since", "in_use")

    def __init__(self, users: int, half_life_hours: float) -> None:
        self.rate = LN2 / half_life_hours
        self.value = [0.0] * users
        self.since = [0.0] * users
        self.in_use = [0] * users

    def usage(self, user: int, now: float) -> float:
        dt = now - self.since[user]
        if dt <= 0.0:
            return self.value[user]
        decay = math.exp(-self.rate * dt)
        return self.value[user] * decay + self.in_use[user] * (1.0 - decay) / self.rate

    def change(self, user: int, now: float, delta: int) -> None:
        self.value[user] = self.usage(user, now)
        self.since[user] = now
        self.in_use[user] += delta


class JobQueue:
    """The waiting jobs of one user and one kind of job (`JobKind`), in submission order."""

    __slots__ = ("user", "kind", "tier", "heap")

    def __init__(self, user: int, kind: int, tier: int) -> None:
        self.user = user
        self.kind = kind
        self.tier = tier
        self.heap: list[int] = []  # submission sequence numbers


class Mode(enum.IntEnum):
    """Checkpoint mode, as the engine's per-run arithmetic tests it."""

    NONE = 0
    PERIODIC = 1
    EXIT = 2


MODES = {CheckpointMode.NONE: Mode.NONE, CheckpointMode.PERIODIC: Mode.PERIODIC,
         CheckpointMode.EXIT: Mode.EXIT}


class JobKind:
    """What the engine needs about one kind of job (the workload, or one background entry)."""

    def __init__(self, scenario: Scenario, request: Request, cpu_speed: float | None,
                 mode: CheckpointMode, tau: float | None, delta: float, restart: float,
                 tier_index: int, n_slots: int, slot_max: list[float | None]) -> None:
        self.choices = eligible(scenario, request, cpu_speed)
        self.choice_units = [(e.slot, e.units, e.usage) for e in self.choices]
        self.units = [0] * n_slots
        self.speed = [0.0] * n_slots
        self.usage = [0] * n_slots
        tier = request_tier(scenario.pool, request)
        self.limit = tier.per_user_limit(scenario.pool.shared_gpus) if tier else None
        # every shared-GPU choice takes `gpus` units: the per-user limit admits all or none
        self.gpus = request.gpus
        self.max_hours = [math.inf] * n_slots
        for e in self.choices:
            self.units[e.slot] = e.units
            self.speed[e.slot] = e.speed
            self.usage[e.slot] = e.usage
            cap = slot_max[e.slot] if not e.is_gpu else (tier.max_hours if tier else None)
            self.max_hours[e.slot] = math.inf if cap is None else cap
        self.mode = MODES[mode]
        self.tau = tau if tau is not None else math.inf
        self.delta = delta
        self.restart = restart
        self.tier = tier_index
        self.resumable = request.is_resumable

    def split(self, elapsed: float, wall: float, restart: float) -> tuple[float, float, float]:
        """(work kept, work lost, overhead), in wall hours, of a run of `wall` hours of work
        after a restart of `restart` hours, interrupted at `elapsed` (the checkpoint semantics
        of `simulator.engine`: work since the last completed write is lost)."""
        if elapsed <= restart:
            return 0.0, 0.0, elapsed
        x = elapsed - restart
        if self.mode == Mode.NONE:
            return 0.0, x, restart
        tau, delta = self.tau, self.delta
        segments = 1 if self.mode == Mode.EXIT else max(1, math.ceil(wall / tau - 1e-9))
        done = min(int(x // (tau + delta)), segments - 1)
        rem = x - done * (tau + delta)
        useful = min(tau, wall - done * tau)
        if rem <= useful:
            return done * tau, rem, restart + done * delta
        return done * tau, useful, restart + done * delta + (rem - useful)


class Matchmaker:
    """Free units per slot class, per-user tier usage, and the waiting queues of each kind."""

    def __init__(self, slots: list[SlotInfo], users: int, tiers: int,
                 half_life_hours: float | None, kinds: list[JobKind]) -> None:
        self.free = [s.units for s in slots]
        self.tier_use = [[0] * max(tiers, 1) for _ in range(users)]
        self.fair = FairShare(users, half_life_hours) if half_life_hours else None
        self.kinds = [(k.choice_units, k.limit, k.tier, k.gpus) for k in kinds]
        # per kind, its queues that have waiting jobs (a dict: ordered, O(1) removal)
        self.waiting: list[dict[JobQueue, None]] = [{} for _ in kinds]
        self.active = 0  # queues with waiting jobs
        self.job_of_seq = array("q")  # job index by submission number (the engine appends)

    def push(self, q: JobQueue, seq: int) -> None:
        if not q.heap:
            self.waiting[q.kind][q] = None
            self.active += 1
        heapq.heappush(q.heap, seq)

    def pop(self, q: JobQueue) -> int:
        """Take the head job of `q` (the engine starts it)."""
        seq = heapq.heappop(q.heap)
        if not q.heap:
            del self.waiting[q.kind][q]
            self.active -= 1
        return self.job_of_seq[seq]

    def fits(self, q: JobQueue) -> int:
        """The slot class the head of `q` could start on now, or -1: its kind's first choice
        with enough free units and, on a shared GPU, room under the user's tier limit."""
        choices, limit, tier, _gpus = self.kinds[q.kind]
        free = self.free
        room = None if limit is None else limit - self.tier_use[q.user][tier]
        for slot, units, usage in choices:
            if free[slot] >= units and (room is None or usage < 2 or units <= room):
                return slot
        return -1

    def select(self, now: float) -> tuple[JobQueue, int] | None:
        """The waiting queue whose head goes first among those that can start now, and where.

        First is the lowest (fair-share usage of its user, submission number of its head).
        Per kind, two scans of its choices decide for every queue of that kind where `fits`
        would put it: `first`, the first choice with enough free units, or, for a user without
        room under the tier limit for a shared GPU, `unlimited`, the first such choice that
        does not count against the limit. A kind nothing fits costs no look at its queues."""
        best: JobQueue | None = None
        best_slot = -1
        best_usage = 0.0
        best_seq = 0
        free = self.free
        fair = self.fair
        tier_use = self.tier_use
        if fair is not None:
            rate, value, since, in_use = fair.rate, fair.value, fair.since, fair.in_use
        exp = math.exp
        for kind, queues in enumerate(self.waiting):
            if not queues:
                continue
            choices, limit, tier, gpus = self.kinds[kind]
            first = unlimited = -1
            for slot, units, usage in choices:
                if free[slot] >= units:
                    if first < 0:
                        first = slot
                    if usage < 2:
                        unlimited = slot
                        break
            if first < 0:
                continue
            check_room = limit is not None and first != unlimited
            room_limit = limit or 0
            for q in queues:
                slot = first
                if check_room and room_limit - tier_use[q.user][tier] < gpus:
                    slot = unlimited
                    if slot < 0:
                        continue
                seq = q.heap[0]
                if fair is None:
                    if best is None or seq < best_seq:
                        best, best_slot, best_seq = q, slot, seq
                    continue
                user = q.user  # inline of fair.usage(user, now), the same arithmetic
                dt = now - since[user]
                if dt <= 0.0:
                    usage_now = value[user]
                else:   # and the user's usage brought up to now: the next look at it is free
                    decay = exp(-rate * dt)
                    usage_now = value[user] = value[user] * decay + in_use[user] * (1.0 - decay) / rate
                    since[user] = now
                if best is None or usage_now < best_usage or (usage_now == best_usage
                                                              and seq < best_seq):
                    best, best_slot, best_usage, best_seq = q, slot, usage_now, seq
        return None if best is None else (best, best_slot)

    def take(self, q: JobQueue, slot: int, units: int, usage: int, now: float) -> None:
        self.free[slot] -= units
        if usage == 2:
            self.tier_use[q.user][q.tier] += units
        if usage and self.fair is not None:
            self.fair.change(q.user, now, units)

    def give_back(self, q: JobQueue, slot: int, units: int, usage: int, now: float) -> None:
        self.free[slot] += units
        if usage == 2:
            self.tier_use[q.user][q.tier] -= units
        if usage and self.fair is not None:
            self.fair.change(q.user, now, -units)
