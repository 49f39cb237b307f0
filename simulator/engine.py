"""The SimPy model of a pool: `run(scenario, seed) -> Results`.

Event-driven, no process per slot: SimPy's `Environment` is the event engine and every event is
a timeout with a plain callback. A job costs one event when it is submitted and one per run
(start → end): at the start the engine already knows when the run will end (the job finishes,
exits to checkpoint, runs into its tier's limit, or is evicted at a time drawn when it
started), so it schedules only the earliest and needs no cancelling. The matchmaker
(`simulator.matchmaking`) is asked for matches on every submission and every release.

**Checkpoint semantics** (what makes Daly's formula exact). A run starts with the restart
cost R (every start but a job's first; it includes the checkpoint transfer; it can itself be
interrupted). Then work proceeds in segments: τ hours of useful work followed by a checkpoint
write of δ hours; the last segment holds what is left (≤ τ) and also ends with a write (the
final checkpoint/output). An interruption loses the work since the last *completed* write
(the whole segment in progress, including a write in progress: `JobKind.split`). Lost work is
computed arithmetically at the interruption time; no event is scheduled per checkpoint. Without
checkpointing an interruption loses the whole run. τ, δ and R are wall-clock hours on the GPU;
work is in reference-GPU hours, divided by the GPU's speed factor.

**HTCondor's run-time behaviour** (docs/DOMAIN.md §3; docs/DESIGN.md §4.3). Exit 85 (`exit`
mode): each run is one segment; the job keeps its slot and restarts in place after the gap,
paying R: no re-match, no new start counted, no wait. The tier clock is the claim's
(JobRuntimeGuarantee measures the job's time on its slot), so it runs on across in-place
restarts, as does the slot's eviction time, drawn once per claim; only a new match restarts
them (a pool whose `limits.tier_clock` is `run` restarts the tier clock at each exit 85). At
the limit a job is held, or vacated and requeued (like an eviction) when it is
`is_resumable` and the pool's `resumable_at_tier_limit` is `vacate`. At an eviction or a vacate
a job that `saves_on_sigterm` holds the slot for its write δ and keeps all its useful work if
δ ≤ the grace, else it is killed at the grace and loses the work since its last checkpoint; it
is runnable again after a restart delay drawn from `restart_delay_hours` (none: at once).

**Interruptions**: on a slot with a time-to-eviction distribution a time is drawn (from that
slot class's own random stream) whenever a job is matched there; owned slots evict backfill jobs
when the owner returns (`OWNER_RETURNED`; the owners, who also claim their idle GPUs, keep a GPU
for a busy period: `simulator.owners`), others are `OPPORTUNISTIC` (the GPU is free again at
once); `TIER_LIMIT` and `TIER_VACATE` are
the tier's. Every cause is in the run trace (`run(..., trace=True)`). An evicted job keeps its
place in the queue. A job interrupted more often than the pool's
`limits.max_starts_without_finishing` (OSPool: 30) is held; pools that name no such limit get a
guard of 1000 interruptions (so that a hopeless job cannot keep a run going forever).

**Accounting** (GPU-hours, × the job's GPUs): *good* = useful work kept (ended in a checkpoint
or in the finished result); *lost* = useful work thrown away by evictions and holds;
*overhead* = restarts and checkpoint writes. good + lost + overhead = the job's busy time.
Runs still going at the horizon are not split. CPU-slot runs are counted in core-hours.

**State**: per-job fields live in typed columns (`simulator.jobs`); a run in progress travels
in the event that ends it. The run stops when every task is completed or held, at the
horizon, or when nothing is left to happen; an exception raised in a callback propagates.

**Random streams**: `SeedSequence(seed)` spawns arrivals, work, evictions (one child per slot
class) and background (one child per background entry: arrivals, work, users), so changing a
policy leaves the workload's arrivals and work unchanged. Same seed, same per-task frame.
"""

from __future__ import annotations

import enum
import math
from typing import Any

import numpy as np
import pandas as pd
import simpy
from simpy.core import StopSimulation

from simulator.errors import ConfigError
from simulator.jobs import MASK_BITS, Jobs, Run, RunEnd, State, Tasks, doubles
from simulator.matchmaking import (
    JobKind,
    JobQueue,
    Matchmaker,
    Mode,
    request_tier,
    slot_infos,
    workload_cpu_speed,
)
from simulator.owners import Owners
from simulator.results import Levels, Measures, Results, build_results
from simulator.scenario import CheckpointMode, Request, Scenario
from simulator.streams import Draws, spawn_streams

# the codes as module constants: the per-run arithmetic reads them often
FINISH, EXIT, EVICT, HOLD, VACATE = RunEnd.FINISH, RunEnd.EXIT, RunEnd.EVICT, RunEnd.HOLD, RunEnd.VACATE
WAITING, RUNNING, COMPLETED, HELD = State.WAITING, State.RUNNING, State.COMPLETED, State.HELD
_NONE, _PERIODIC, _EXIT = Mode.NONE, Mode.PERIODIC, Mode.EXIT


class EvictionCause(enum.Enum):
    """Why a run was cut short."""

    OWNER_RETURNED = "owner_returned"
    OPPORTUNISTIC = "opportunistic"
    TIER_LIMIT = "tier_limit"
    TIER_VACATE = "tier_vacate"   # an is_resumable job at its tier's limit, vacated and requeued


class Engine:
    """One simulation run. Use `run(scenario, seed)`."""

    def __init__(self, scenario: Scenario, seed: int | np.random.SeedSequence | None = None, *,
                 trace: bool = False) -> None:
        self.sc = scenario
        self.trace: list[tuple[float, str, int, int, int, str]] | None = [] if trace else None
        s_arr, s_work, s_evict, s_bg, s_owner = spawn_streams(scenario.seed if seed is None else seed)
        pool = scenario.pool
        self.slots = slot_infos(scenario)
        n_slots = len(self.slots)
        self.env = simpy.Environment()
        self.evict_draws: list[Draws | None] = []
        self.cause = [EvictionCause.OWNER_RETURNED if s.owned else EvictionCause.OPPORTUNISTIC
                      for s in self.slots]
        for s, ss in zip(self.slots, s_evict.spawn(n_slots), strict=True):
            self.evict_draws.append(Draws(s.eviction, np.random.default_rng(ss))
                                    if s.eviction is not None else None)
        # the restart delays after evictions: the next child of the eviction stream, so the
        # slots' own streams are those of a scenario without a delay
        delay_ss = s_evict.spawn(1)[0]
        self.delay_draws = (Draws(scenario.restart_delay, np.random.default_rng(delay_ss))
                            if scenario.restart_delay is not None else None)
        self.grace = scenario.grace_hours
        self.vacate_resumable = pool.resumable_at_tier_limit == "vacate"
        self.clock_per_run = pool.tier_clock == "run"
        type_names = list(dict.fromkeys(s.gpu for s in self.slots))
        if len(type_names) > MASK_BITS:
            raise ConfigError("pool.slots", len(type_names),
                              f"names more GPU types than the simulator tracks ({MASK_BITS}).",
                              "merge slot classes of similar GPUs.")
        self.type_names = type_names
        self.slot_type = [type_names.index(s.gpu) for s in self.slots]
        self.slot_is_cpu = [s.is_cpu for s in self.slots]
        slot_max = [s.max_hours for s in self.slots]
        tiers = [t.name for t in pool.tiers]

        def tier_index(req: Request) -> int:
            t = request_tier(pool, req)
            return tiers.index(t.name) if t is not None else 0

        w = scenario.workload
        ck = w.checkpoint
        self.kinds = [JobKind(scenario, w.request, workload_cpu_speed(scenario), ck.mode,
                              ck.interval_hours, ck.cost_hours, ck.restart_hours,
                              tier_index(w.request), n_slots, slot_max)]
        # the workload's in-place restart (exit 85) and its save on SIGTERM (-1: none)
        self.in_place_restart = ck.restart_gap_hours + ck.restart_hours
        self.sigterm_save = ck.cost_hours if ck.saves_on_sigterm and ck.mode is not CheckpointMode.NONE \
            else -1.0
        self.user_offset = [0]
        users = 1
        for b in scenario.background:
            self.kinds.append(JobKind(scenario, b.request, None, CheckpointMode.NONE, None, 0.0, 0.0,
                                      tier_index(b.request), n_slots, slot_max))
            self.user_offset.append(users)
            users += b.users
        self.mm = Matchmaker(self.slots, users, len(tiers), scenario.fair_share_half_life_hours,
                             self.kinds)
        n_gpu_classes = len(pool.slots)
        self.owners = Owners(
            self.env, self.mm.free, [s.units for s in self.slots],
            [s.eviction if s.owned else None for s in self.slots],
            [scenario.owner_busy(pool.slots[i]) if i < n_gpu_classes else None
             for i in range(n_slots)],
            s_owner.spawn(n_slots), scenario.warmup_hours, self._dispatch)
        self.queue_index: dict[int, int] = {}
        self.queues: list[JobQueue] = []
        self.n_kinds = len(self.kinds)

        # the workload: arrivals and work drawn up front from their own streams
        n = w.tasks
        self.n = n
        rng_arr, rng_work = np.random.default_rng(s_arr), np.random.default_rng(s_work)
        if w.arrival is None:
            arrivals = np.full(n, w.start_hours)
        else:
            arrivals = w.start_hours + np.cumsum(np.asarray(w.arrival.sample(rng_arr, n), dtype=float))
        self.arrivals = doubles(arrivals)
        # per-job state (workload tasks first, in queue 0; background jobs appended as they arrive)
        self.jobs = Jobs.allocate(np.asarray(w.work_hours.sample(rng_work, n), dtype=float))
        self.tasks = Tasks.allocate(n)
        self._queue(0, 0)
        limit = pool.limits.get("max_starts_without_finishing") if pool.limits else None
        self.max_evictions = int(limit) if isinstance(limit, (int, float)) else 1000
        self.terminal = 0
        # time integrals over the statistics window [warmup, end]
        self.w0 = scenario.warmup_hours
        self.busy = Levels(n_slots, self.w0)      # units in use per slot class
        self.waiting = Levels(1, self.w0)         # workload tasks waiting
        self.bg_draws = []
        for i, (b, ss) in enumerate(zip(scenario.background, s_bg.spawn(len(scenario.background)),
                                        strict=True)):
            a, wk, us = ss.spawn(3)
            self.bg_draws.append((Draws(b.arrival, np.random.default_rng(a)),
                                  Draws(b.work_hours, np.random.default_rng(wk)),
                                  np.random.default_rng(us), b.users, i + 1))
        self.user_draws: list[list[int]] = [[] for _ in scenario.background]
        self.stop = self.env.event()

    # --- bookkeeping ----------------------------------------------------------------------
    def _queue(self, user: int, kind: int) -> int:
        """The index of the queue of `user`'s jobs of `kind` (made on first use)."""
        key = user * self.n_kinds + kind
        index = self.queue_index.get(key)
        if index is None:
            index = self.queue_index[key] = len(self.queues)
            self.queues.append(JobQueue(user, kind, self.kinds[kind].tier))
        return index

    def _now(self) -> float:
        """The time of the event being handled, with the owners' claims on idle GPUs replayed
        up to it (every callback that reads or changes the free GPUs starts here)."""
        now: float = self.env.now
        if now >= self.owners.next_due:
            self.owners.catch_up(now)
        return now

    # --- submission -----------------------------------------------------------------------
    def _submit(self, j: int, now: float) -> None:
        mm = self.mm
        jobs = self.jobs
        q = self.queues[jobs.queue[j]]
        job_of_seq = mm.job_of_seq  # the next submission number
        seq = len(job_of_seq)
        job_of_seq.append(j)
        jobs.seq[j] = seq
        jobs.enqueued[j] = now
        if j < self.n:
            self.tasks.submit[j] = now
            self.tasks.state[j] = WAITING
        if not q.heap:
            slot = mm.fits(q)
            if slot >= 0:
                self._start(j, q, slot, now)
                return
        if j < self.n:
            self.waiting.change(0, 1, now)
        mm.push(q, seq)

    def _workload_arrival(self, ev: Any) -> None:
        i: int = ev.value
        now = self._now()
        arr = self.arrivals
        n = self.n
        self._submit(i, now)
        i += 1
        while i < n and arr[i] <= now:
            self._submit(i, now)
            i += 1
        if i < n:
            self.env.timeout(arr[i] - now, i).callbacks.append(self._workload_arrival)

    def _background_arrival(self, ev: Any) -> None:
        b: int = ev.value
        arrival, work, users_rng, users, kind = self.bg_draws[b]
        now = self._now()
        pending = self.user_draws[b]
        if not pending:
            pending.extend(users_rng.integers(0, users, 1024).tolist()[::-1])
        user = self.user_offset[kind] + pending.pop()
        j = self.jobs.append(self._queue(user, kind), work.next(), now)
        self._submit(j, now)
        self.env.timeout(arrival.next(), b).callbacks.append(self._background_arrival)

    # --- runs -----------------------------------------------------------------------------
    def _start(self, j: int, q: JobQueue, slot: int, now: float) -> None:
        k = self.kinds[q.kind]
        jobs = self.jobs
        units = k.units[slot]
        self.mm.take(q, slot, units, k.usage[slot], now)
        self.busy.change(slot, units, now)
        restart = k.restart if jobs.runs[j] > 0 else 0.0
        draws = self.evict_draws[slot]
        evict_at = now + draws.next() if draws is not None else math.inf
        if j < self.n:
            tasks = self.tasks
            tasks.wait[j] += now - jobs.enqueued[j]
            starts = tasks.starts[j]
            if starts == 0:
                tasks.first_start[j] = now
            tasks.starts[j] = starts + 1
            tasks.gpu_types[j] |= 1 << self.slot_type[slot]
            tasks.state[j] = RUNNING
        if self.trace is not None:
            self.trace.append((now, "start", j, slot, units, ""))
        self._begin(j, k, slot, now, restart, now, evict_at)

    def _begin(self, j: int, k: JobKind, slot: int, now: float, restart: float, claim: float,
               evict_at: float) -> None:
        """Schedule the end of the run that begins `now` on `slot` (a new start, or an in-place
        restart of the claim that began at `claim`)."""
        jobs = self.jobs
        jobs.runs[j] += 1
        wall = jobs.work[j] - jobs.progress[j]
        wall = wall / k.speed[slot] if wall > 0.0 else 0.0
        mode = k.mode
        if mode == _NONE:
            length = restart + wall
            end = FINISH
        elif mode == _PERIODIC:
            segments = math.ceil(wall / k.tau - 1e-9) if wall > 0.0 else 0
            length = restart + wall + segments * k.delta
            end = FINISH
        elif wall > k.tau * (1.0 + 1e-12):
            length = restart + k.tau + k.delta
            end = EXIT
        else:
            length = restart + wall + (k.delta if wall > 0.0 else 0.0)
            end = FINISH
        cap = claim + k.max_hours[slot] - now     # the tier clock runs from the claim's start
        if cap < length:
            length, end = cap, (VACATE if k.resumable and self.vacate_resumable else HOLD)
        if evict_at - now < length:
            length, end = evict_at - now, EVICT
        if (end == EVICT or end == VACATE) and j < self.n and self.sigterm_save >= 0.0:
            length += min(self.sigterm_save, self.grace)  # the save on SIGTERM holds the slot
        run: Run = (j, slot, now, wall, restart, end, claim, evict_at)
        self.env.timeout(length, run).callbacks.append(self._run_end)

    def _run_end(self, ev: Any) -> None:
        j, slot, started, wall, restart, planned, claim, evict_at = ev.value
        now = self._now()
        jobs = self.jobs
        q = self.queues[jobs.queue[j]]
        k = self.kinds[q.kind]
        units = k.units[slot]
        elapsed = now - started
        task = j < self.n
        if planned == EXIT:   # exit 85: the job keeps its claim and restarts in place
            jobs.progress[j] += k.tau * k.speed[slot]
            if task:
                tasks = self.tasks
                tasks.good[j] += k.tau * units
                tasks.overhead[j] += (elapsed - k.tau) * units
                tasks.checkpoint_exits[j] += 1
            if self.trace is not None:
                # the claim stays: no GPU changes hands (units 0)
                self.trace.append((now, "restart_in_place", j, slot, 0, "checkpoint_exit"))
            self._begin(j, k, slot, now, self.in_place_restart, now if self.clock_per_run else claim,
                        evict_at)
            return
        if planned == FINISH:
            over = elapsed - wall
            kept, lost, over = wall, 0.0, over if over > 1e-9 * (1.0 + elapsed) else 0.0
            jobs.progress[j] = jobs.work[j]
        else:
            if task and planned != HOLD and self.sigterm_save >= 0.0:   # SIGTERM: save
                held = min(self.sigterm_save, self.grace)
                kept, lost, over = k.split(elapsed - held, wall, restart)
                if self.sigterm_save <= self.grace:   # the save finished before SIGKILL
                    kept, lost = kept + lost, 0.0
                over += held
            else:
                kept, lost, over = k.split(elapsed, wall, restart)
            jobs.progress[j] += kept * k.speed[slot]
        self.mm.give_back(q, slot, units, k.usage[slot], now)
        self.busy.change(slot, -units, now)
        end = planned
        if end == EVICT or end == VACATE:
            if end == EVICT and self.slots[slot].owned:
                self.owners.claim(slot, units, now, now)  # the owners' own work holds the GPUs
            end = EVICT
            evictions = jobs.evictions[j] + 1
            jobs.evictions[j] = evictions
            if evictions >= self.max_evictions:
                end = HOLD
        if self.trace is not None:
            why = ("finish", "checkpoint_exit", self.cause[slot].value, EvictionCause.TIER_LIMIT.value,
                   EvictionCause.TIER_VACATE.value)
            self.trace.append((now, "end", j, slot, units, why[planned]))
        tasks = self.tasks
        if task:
            if self.slot_is_cpu[slot]:
                tasks.cpu_core_hours[j] += elapsed * units
            else:
                tasks.good[j] += kept * units
                tasks.lost[j] += lost * units
                tasks.overhead[j] += over * units
        if end == FINISH or end == HOLD:
            if task:
                if end == FINISH:
                    tasks.finish[j] = now
                    tasks.state[j] = COMPLETED
                else:
                    if planned == EVICT or planned == VACATE:
                        tasks.evictions[j] += 1
                    tasks.holds[j] += 1
                    tasks.state[j] = HELD
                self.terminal += 1
                if self.terminal == self.n and not self.stop.triggered:
                    self.stop.succeed()
        else:   # evicted or vacated: runnable again after the restart delay
            if task:
                tasks.evictions[j] += 1
                tasks.state[j] = WAITING
                self.waiting.change(0, 1, now)
            jobs.enqueued[j] = now
            if self.delay_draws is None:
                self.mm.push(q, jobs.seq[j])
            else:
                self.env.timeout(self.delay_draws.next(), j).callbacks.append(self._requeue)
        self._dispatch(now)

    def _requeue(self, ev: Any) -> None:
        """An evicted job's restart delay is over: back in its queue, in its old place."""
        j: int = ev.value
        now = self._now()
        self.mm.push(self.queues[self.jobs.queue[j]], self.jobs.seq[j])
        self._dispatch(now)

    def _dispatch(self, now: float) -> None:
        mm = self.mm
        n = self.n
        while mm.active:
            pick = mm.select(now)
            if pick is None:
                return
            q, slot = pick
            j = mm.pop(q)
            if j < n:
                self.waiting.change(0, -1, now)
            self._start(j, q, slot, now)

    # --- the run --------------------------------------------------------------------------
    def _horizon(self, _ev: simpy.Event) -> None:
        if not self.stop.triggered:
            self.stop.succeed()

    def run(self) -> Results:
        env = self.env
        sc = self.sc
        if self.n:
            env.timeout(self.arrivals[0], 0).callbacks.append(self._workload_arrival)
        for b, (arrival, *_rest) in enumerate(self.bg_draws):
            env.timeout(arrival.next(), b).callbacks.append(self._background_arrival)
        self.owners.start()
        if sc.horizon_hours is not None:
            env.timeout(sc.horizon_hours).callbacks.append(self._horizon)
        # SimPy's own stop signal: `run` returns when `stop` fires or nothing is left to happen
        # (every remaining job stuck); whatever else a callback raises propagates
        self.stop.callbacks.append(StopSimulation.callback)
        env.run()
        end = float(env.now)
        if sc.horizon_hours is not None:
            end = min(end, sc.horizon_hours)
        return self._results(end)

    def _results(self, end: float) -> Results:
        n = self.n
        columns = self.tasks.result_columns(self.jobs, end, self.type_names)
        capacity: dict[str, float] = {}
        busy: dict[str, float] = {}
        owned = 0
        for info, area in zip(self.slots, self.busy.close(end), strict=True):
            capacity[info.gpu] = capacity.get(info.gpu, 0) + info.units
            busy[info.gpu] = busy.get(info.gpu, 0.0) + area
            owned += info.units if info.owned else 0
        measures = Measures(window_start=self.w0, window_end=end, capacity=capacity,
                            busy_hours=busy, waiting_task_hours=self.waiting.close(end)[0],
                            background_jobs=len(self.jobs) - n, owned_gpus=owned,
                            owner_busy_hours=sum(self.owners.hours(end)))
        trace = None
        if self.trace is not None:
            trace = pd.DataFrame(self.trace, columns=["time_hours", "event", "job", "slot", "units",
                                                      "cause"])
            trace["task"] = trace["job"] < n
            trace["slot_label"] = [self.slots[s].label for s in trace["slot"]]
        return build_results(columns, measures, self.sc, trace)


def run(scenario: Scenario, seed: int | np.random.SeedSequence | None = None, *,
        trace: bool = False) -> Results:
    """Simulate `scenario` once. `seed` (an int or a SeedSequence) defaults to `scenario.seed`.

    With `trace`, `Results.trace` lists every claim's start and end (time, job, slot class,
    units taken or given back, and why it ended) and every exit-85 restart in place between them
    (`restart_in_place`, 0 units: the claim stays): for tests and for looking inside one run."""
    return Engine(scenario, seed, trace=trace).run()
