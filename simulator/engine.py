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
(the whole segment in progress, including a write in progress). Lost work is computed
arithmetically at the interruption time; no event is scheduled per checkpoint. Without
checkpointing an interruption loses the whole run. In `exit` mode each run is one segment
after which the job exits and is queued again. τ, δ and R are wall-clock hours on the GPU;
work is in reference-GPU hours, divided by the GPU's speed factor.

**Interruptions**: on a slot with a time-to-eviction distribution a time is drawn (from that
slot class's own random stream) whenever a job starts there; owned slots evict backfill jobs
when the owner returns (`OWNER_RETURNED`), others are `OPPORTUNISTIC`. The evicted job goes
back to the queue, keeping its place. An opportunistically evicted GPU is free again at once;
a returning owner keeps the GPU for `owner_busy_hours` (a scenario distribution; none: free at
once). The cause of every interruption is recorded in the run trace (`run(..., trace=True)`). A run reaching its
length tier's `max_hours` is held (`TIER_LIMIT`): work since the last write is lost, and the
job stays held (it does not run again). A job interrupted more often than the pool's
`limits.max_starts_without_finishing` (OSPool: 30) is held too; pools that name no such limit
get a guard of 1000 interruptions (so that a hopeless job cannot keep a run going forever).

**Accounting** (GPU-hours, × the job's GPUs): *good* = useful work kept (ended in a checkpoint
or in the finished result); *lost* = useful work thrown away by evictions and holds;
*overhead* = restarts and checkpoint writes. good + lost + overhead = the job's busy time.
Runs still going at the horizon are not split. CPU-slot runs are counted in core-hours.

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

from simulator.matchmaking import (
    MODE_EXIT,
    MODE_NONE,
    MODE_PERIODIC,
    JobKind,
    JobQueue,
    Matchmaker,
    request_tier,
    slot_infos,
    workload_cpu_speed,
)
from simulator.results import Measures, Results, build_results
from simulator.scenario import CheckpointMode, Request, Scenario
from simulator.streams import Draws, spawn_streams

INF = math.inf
FINISH, EXIT, EVICT, HOLD = 0, 1, 2, 3
WAITING, RUNNING, COMPLETED, HELD, PENDING = 1, 2, 3, 4, 0
STATE_NAMES = {PENDING: "pending", WAITING: "waiting", RUNNING: "running", COMPLETED: "completed",
               HELD: "held"}
_NONE, _PERIODIC, _EXIT = MODE_NONE, MODE_PERIODIC, MODE_EXIT


class EvictionCause(enum.Enum):
    """Why a run was cut short."""

    OWNER_RETURNED = "owner_returned"
    OPPORTUNISTIC = "opportunistic"
    TIER_LIMIT = "tier_limit"


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
        self.owner_draws: list[Draws | None] = [
            Draws(scenario.owner_busy_hours, np.random.default_rng(ss))
            if s.owned and scenario.owner_busy_hours is not None else None
            for s, ss in zip(self.slots, s_owner.spawn(n_slots), strict=True)]
        type_names = list(dict.fromkeys(s.gpu for s in self.slots))
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
        self.user_offset = [0]
        users = 1
        for b in scenario.background:
            self.kinds.append(JobKind(scenario, b.request, None, CheckpointMode.NONE, None, 0.0, 0.0,
                                    tier_index(b.request), n_slots, slot_max))
            self.user_offset.append(users)
            users += b.users
        self.mm = Matchmaker(self.slots, users, len(tiers), scenario.fair_share_half_life_hours)
        self.queues: dict[int, JobQueue] = {}
        self.n_kinds = len(self.kinds)

        # the workload: arrivals and work drawn up front from their own streams
        n = w.tasks
        self.n = n
        rng_arr, rng_work = np.random.default_rng(s_arr), np.random.default_rng(s_work)
        if w.arrival is None:
            arrivals = np.full(n, w.start_hours)
        else:
            arrivals = w.start_hours + np.cumsum(np.asarray(w.arrival.sample(rng_arr, n), dtype=float))
        self.arrivals: list[float] = arrivals.tolist()
        work = np.asarray(w.work_hours.sample(rng_work, n), dtype=float)
        # per-job state (workload tasks first; background jobs are appended as they arrive)
        self.j_kind = [0] * n
        self.j_user = [0] * n
        self.j_work: list[float] = work.tolist()
        self.j_prog = [0.0] * n
        self.j_seq = [0] * n
        self.j_runs = [0] * n
        self.j_enq = [0.0] * n
        self.j_slot = [-1] * n
        self.j_t0 = [0.0] * n
        self.j_wall = [0.0] * n  # remaining useful wall time at the start of the run
        self.j_rst = [0.0] * n   # restart cost paid in this run
        self.j_end = [FINISH] * n
        self.j_queue: list[JobQueue | None] = [None] * n
        self.j_evictions = [0] * n
        limit = pool.limits.get("max_starts_without_finishing") if pool.limits else None
        self.max_evictions = int(limit) if isinstance(limit, (int, float)) else 1000
        # per-task records
        nan = math.nan
        self.r_submit = [nan] * n
        self.r_first = [nan] * n
        self.r_finish = [nan] * n
        self.r_wait = [0.0] * n
        self.r_evict = [0] * n
        self.r_hold = [0] * n
        self.r_exits = [0] * n
        self.r_starts = [0] * n
        self.r_types = [0] * n
        self.r_good = [0.0] * n
        self.r_lost = [0.0] * n
        self.r_over = [0.0] * n
        self.r_cpu = [0.0] * n
        self.r_state = [PENDING] * n
        self.terminal = 0
        # time integrals over the statistics window [warmup, end]
        self.w0 = scenario.warmup_hours
        self.busy = [0] * n_slots
        self.busy_area = [0.0] * n_slots
        self.busy_last = [0.0] * n_slots
        self.n_waiting = 0
        self.wait_area = 0.0
        self.wait_last = 0.0
        self.bg_draws = []
        for i, (b, ss) in enumerate(zip(scenario.background, s_bg.spawn(len(scenario.background)),
                                        strict=True)):
            a, wk, us = ss.spawn(3)
            self.bg_draws.append((Draws(b.arrival, np.random.default_rng(a)),
                                  Draws(b.work_hours, np.random.default_rng(wk)),
                                  np.random.default_rng(us), b.users, i + 1))
        self.user_draws: list[list[int]] = [[] for _ in scenario.background]
        self.stop = self.env.event()
        self.j_queue[:n] = [self._queue(0, 0)] * n  # every task: user 0, the workload's kind

    # --- bookkeeping ----------------------------------------------------------------------
    def _queue(self, user: int, kind: int) -> JobQueue:
        key = user * self.n_kinds + kind
        q = self.queues.get(key)
        if q is None:
            k = self.kinds[kind]
            q = JobQueue(user, kind, [], k.tier, k.limit)
            q.choices = [(e.slot, e.units, e.usage) for e in k.choices]
            self.queues[key] = q
        return q

    def _busy_change(self, slot: int, delta: int, now: float) -> None:
        t0 = self.busy_last[slot]
        if t0 < self.w0:
            t0 = self.w0
        if now > t0:
            self.busy_area[slot] += self.busy[slot] * (now - t0)
        self.busy_last[slot] = now
        self.busy[slot] += delta

    def _waiting_change(self, delta: int, now: float) -> None:
        t0 = self.wait_last if self.wait_last > self.w0 else self.w0
        if now > t0:
            self.wait_area += self.n_waiting * (now - t0)
        self.wait_last = now
        self.n_waiting += delta

    # --- submission -----------------------------------------------------------------------
    def _submit(self, j: int, now: float) -> None:
        mm = self.mm
        q = self.j_queue[j]
        if q is None:
            q = self.j_queue[j] = self._queue(self.j_user[j], self.j_kind[j])
        job_of_seq = mm.job_of_seq  # inline of mm.new_seq(j)
        seq = len(job_of_seq)
        job_of_seq.append(j)
        self.j_seq[j] = seq
        self.j_enq[j] = now
        if j < self.n:
            self.r_submit[j] = now
            self.r_state[j] = WAITING
        if not q.heap:
            slot = mm.fits(q)
            if slot >= 0:
                self._start(j, q, slot, now)
                return
        if j < self.n:
            self._waiting_change(1, now)
        mm.push(q, j, seq)

    def _workload_arrival(self, ev: Any) -> None:
        i: int = ev.value
        now = self.env.now
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
        now = self.env.now
        pending = self.user_draws[b]
        if not pending:
            pending.extend(users_rng.integers(0, users, 1024).tolist()[::-1])
        j = len(self.j_kind)
        self.j_kind.append(kind)
        self.j_user.append(self.user_offset[kind] + pending.pop())
        self.j_work.append(work.next())
        self.j_prog.append(0.0)
        self.j_seq.append(0)
        self.j_runs.append(0)
        self.j_enq.append(now)
        self.j_slot.append(-1)
        self.j_t0.append(0.0)
        self.j_wall.append(0.0)
        self.j_rst.append(0.0)
        self.j_end.append(FINISH)
        self.j_queue.append(None)
        self.j_evictions.append(0)
        self._submit(j, now)
        self.env.timeout(arrival.next(), b).callbacks.append(self._background_arrival)

    # --- runs -----------------------------------------------------------------------------
    def _start(self, j: int, q: JobQueue, slot: int, now: float) -> None:
        k = self.kinds[q.kind]
        units = k.units[slot]
        self.mm.take(q, slot, units, k.usage[slot], now)
        busy_last = self.busy_last  # inline of _busy_change(slot, units, now)
        t0 = busy_last[slot] if busy_last[slot] > self.w0 else self.w0
        if now > t0:
            self.busy_area[slot] += self.busy[slot] * (now - t0)
        busy_last[slot] = now
        self.busy[slot] += units
        restart = k.restart if self.j_runs[j] > 0 else 0.0
        self.j_runs[j] += 1
        wall = self.j_work[j] - self.j_prog[j]
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
        cap = k.max_hours[slot]
        if cap < length:
            length, end = cap, HOLD
        draws = self.evict_draws[slot]
        if draws is not None:
            tte = draws.next()
            if tte < length:
                length, end = tte, EVICT
        self.j_slot[j] = slot
        self.j_t0[j] = now
        self.j_wall[j] = wall
        self.j_rst[j] = restart
        self.j_end[j] = end
        if j < self.n:
            self.r_wait[j] += now - self.j_enq[j]
            if self.r_starts[j] == 0:
                self.r_first[j] = now
            self.r_starts[j] += 1
            self.r_types[j] |= 1 << self.slot_type[slot]
            self.r_state[j] = RUNNING
        if self.trace is not None:
            self.trace.append((now, "start", j, slot, units, ""))
        self.env.timeout(length, j).callbacks.append(self._run_end)

    def _split(self, k: JobKind, elapsed: float, wall: float, restart: float) -> tuple[float, float, float]:
        """(work kept, work lost, overhead), in wall hours, of a run interrupted at `elapsed`."""
        if elapsed <= restart:
            return 0.0, 0.0, elapsed
        x = elapsed - restart
        if k.mode == _NONE:
            return 0.0, x, restart
        tau, delta = k.tau, k.delta
        segments = 1 if k.mode == _EXIT else max(1, math.ceil(wall / tau - 1e-9))
        done = min(int(x // (tau + delta)), segments - 1)
        rem = x - done * (tau + delta)
        useful = min(tau, wall - done * tau)
        if rem <= useful:
            return done * tau, rem, restart + done * delta
        return done * tau, useful, restart + done * delta + (rem - useful)

    def _run_end(self, ev: Any) -> None:
        j: int = ev.value
        now = self.env.now
        slot = self.j_slot[j]
        q = self.j_queue[j]
        assert q is not None
        k = self.kinds[q.kind]
        units = k.units[slot]
        elapsed = now - self.j_t0[j]
        wall = self.j_wall[j]
        end = self.j_end[j]
        if end == FINISH:
            over = elapsed - wall
            kept, lost, over = wall, 0.0, over if over > 1e-9 * (1.0 + elapsed) else 0.0
            self.j_prog[j] = self.j_work[j]
        else:
            if end == EXIT:
                kept, lost, over = k.tau, 0.0, elapsed - k.tau
            else:
                kept, lost, over = self._split(k, elapsed, wall, self.j_rst[j])
            self.j_prog[j] += kept * k.speed[slot]
        self.mm.give_back(q, slot, units, k.usage[slot], now)
        busy_last = self.busy_last  # inline of _busy_change(slot, -units, now)
        t0 = busy_last[slot] if busy_last[slot] > self.w0 else self.w0
        if now > t0:
            self.busy_area[slot] += self.busy[slot] * (now - t0)
        busy_last[slot] = now
        self.busy[slot] -= units
        if end == EVICT and self.owner_draws[slot] is not None:
            owner = self.owner_draws[slot]
            assert owner is not None
            self.mm.free[slot] -= units  # the owner's own work holds the GPUs for a while
            self.env.timeout(owner.next(), (slot, units)).callbacks.append(self._owner_leaves)
        self.j_slot[j] = -1
        if end == EVICT:
            self.j_evictions[j] += 1
            if self.j_evictions[j] >= self.max_evictions:
                end = HOLD
        if self.trace is not None:
            why = ("finish", "checkpoint_exit", self.cause[slot].value, EvictionCause.TIER_LIMIT.value)
            self.trace.append((now, "end", j, slot, units, why[self.j_end[j]]))
        task = j < self.n
        if task:
            if self.slot_is_cpu[slot]:
                self.r_cpu[j] += elapsed * units
            else:
                self.r_good[j] += kept * units
                self.r_lost[j] += lost * units
                self.r_over[j] += over * units
        if end == FINISH or end == HOLD:
            if task:
                if end == FINISH:
                    self.r_finish[j] = now
                    self.r_state[j] = COMPLETED
                else:
                    if self.j_end[j] == EVICT:
                        self.r_evict[j] += 1
                    self.r_hold[j] += 1
                    self.r_state[j] = HELD
                self.terminal += 1
                if self.terminal == self.n and not self.stop.triggered:
                    self.stop.succeed()
        else:
            if task:
                if end == EVICT:
                    self.r_evict[j] += 1
                else:
                    self.r_exits[j] += 1
                self.r_state[j] = WAITING
                self._waiting_change(1, now)
            self.j_enq[j] = now
            self.mm.push(q, j, self.j_seq[j])
        self._dispatch(now)

    def _owner_leaves(self, ev: Any) -> None:
        slot, units = ev.value
        self.mm.free[slot] += units
        self._dispatch(self.env.now)

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
                self._waiting_change(-1, now)
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
        if sc.horizon_hours is not None:
            env.timeout(sc.horizon_hours).callbacks.append(self._horizon)
        try:
            env.run(until=self.stop)
        except RuntimeError:  # nothing left to happen (every job stuck): end here
            pass
        end = float(env.now)
        if sc.horizon_hours is not None:
            end = min(end, sc.horizon_hours)
        for s in range(len(self.slots)):
            self._busy_change(s, 0, end)
        self._waiting_change(0, end)
        return self._results(end)

    def _results(self, end: float) -> Results:
        n = self.n
        for j in range(n):
            if self.r_state[j] == WAITING:
                self.r_wait[j] += end - self.j_enq[j]
        names = self.type_names
        type_strings: dict[int, str] = {}
        labels = []
        for mask in self.r_types:
            s = type_strings.get(mask)
            if s is None:
                s = "+".join(names[i] for i in range(len(names)) if mask >> i & 1)
                type_strings[mask] = s
            labels.append(s)
        columns: dict[str, Any] = {
            "task": np.arange(n),
            "submit_hours": self.r_submit,
            "first_start_hours": self.r_first,
            "finish_hours": self.r_finish,
            "total_wait_hours": self.r_wait,
            "evictions": self.r_evict,
            "holds": self.r_hold,
            "checkpoint_exits": self.r_exits,
            "starts": self.r_starts,
            "gpu_types": labels,
            "work_hours": self.j_work[:n],
            "good_gpu_hours": self.r_good,
            "lost_gpu_hours": self.r_lost,
            "overhead_gpu_hours": self.r_over,
            "cpu_core_hours": self.r_cpu,
            "state": [STATE_NAMES[s] for s in self.r_state],
        }
        capacity: dict[str, float] = {}
        busy: dict[str, float] = {}
        for i, info in enumerate(self.slots):
            capacity[info.gpu] = capacity.get(info.gpu, 0) + info.units
            busy[info.gpu] = busy.get(info.gpu, 0.0) + self.busy_area[i]
        measures = Measures(window_start=self.w0, window_end=end, capacity=capacity,
                            busy_hours=busy, waiting_task_hours=self.wait_area,
                            background_jobs=len(self.j_kind) - n)
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

    With `trace`, `Results.trace` lists every run's start and end (time, job, slot class,
    units, and why it ended): for tests and for looking inside one run."""
    return Engine(scenario, seed, trace=trace).run()
