"""Research groups using their own GPUs: the owners of a pool's owned slot classes.

Each owned GPU alternates between *idle* (no owner job: free, or lent out as backfill) and
*owner-busy*. Idle periods last the slot class's time to eviction (mean I: from a backfill
job's point of view the owner comes back after that long); owner-busy periods are drawn from
the scenario's `owner_busy_hours`, or, when it names none, are exponential with the mean that
gives the owners' busy fraction f (`owner_busy_fraction`, default the pool's): B = I·f/(1−f),
so that B/(I+B) = f. With neither, an owner who returns leaves again at once (the GPU is free
for the next job) and idle GPUs need no events.

Two paths bring an owner back, both at rate 1/I per idle GPU (exact for exponential idle
periods, the memoryless case):

* on a GPU lent as backfill, at the eviction time the engine draws when the job is matched
  (`simulator.engine`; cause `owner_returned`); the engine then calls `claim`;
* on a free GPU, by thinning: owner arrivals come at rate C/I over the class's C GPUs; each picks
  one GPU at random and claims it when that GPU is free (probability free/C). Arrivals on a GPU
  that is lent out or already owner-busy are ignored: those have their own clocks.

Arrivals on free GPUs are not SimPy events: they are replayed, in time order, when the engine
next looks at or changes the free GPUs (`catch_up(now)` at the start of each of its callbacks).
This is exact: between two engine events the free GPUs change only by these claims, and a claim
takes a GPU no waiting job could use (one that could would have started on it), so a busy period
that begins and ends between two engine events frees a GPU nobody is waiting for; it is replayed
too (for the free count and the busy-hours integral), and one that ends later is an event.

At time 0 each class starts in equilibrium: Binomial(C, f) GPUs owner-busy, each for a draw
from the busy-period distribution (exactly the residual time for the exponential default).

Owner-busy GPU-hours are integrated over the statistics window (`hours`), so a run reports how
much of their GPUs the owners held (`Results.summary["owner_busy_fraction"]`).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from simulator.distributions import Distribution
from simulator.results import Levels
from simulator.streams import Draws


class Owners:
    """The owners of every owned slot class: their claims on free GPUs and how long they keep
    a GPU; `free` is the matchmaker's free-units list (shared, changed in place)."""

    def __init__(self, env: simpy.Environment, free: list[int], capacity: list[int],
                 idle: list[Distribution | None], busy: list[Distribution | None],
                 seeds: list[np.random.SeedSequence], window_start: float,
                 on_release: Callable[[float], None]) -> None:
        self.env = env
        self.free = free
        self.capacity = capacity
        self.on_release = on_release
        self.held = Levels(len(capacity), window_start)   # owner-busy GPUs per slot class
        # owner arrivals on idle GPUs (0 units) and busy periods that ended between engine
        # events (their units), replayed by `catch_up`: (time, order, slot class, units)
        self.pending: list[tuple[float, int, int, int]] = []
        self.order = 0
        self.next_due = math.inf
        # per class: busy-period draws (also used after an eviction), and, where owners claim
        # free GPUs, the thinned arrivals, the class's own generator and its busy fraction
        self.busy: list[Draws | None] = []
        self.arrivals: list[tuple[Draws, np.random.Generator, float] | None] = []
        for s, (i, b, ss) in enumerate(zip(idle, busy, seeds, strict=True)):
            busy_ss, arrive_ss, start_ss = ss.spawn(3)
            self.busy.append(Draws(b, np.random.default_rng(busy_ss)) if b is not None else None)
            mean_idle = i.mean if i is not None else math.inf
            if b is None or b.mean <= 0.0 or not 0.0 < mean_idle < math.inf:
                self.arrivals.append(None)
                continue
            gap = Distribution("exponential", (("mean", mean_idle / capacity[s]),))
            self.arrivals.append((Draws(gap, np.random.default_rng(arrive_ss)),
                                  np.random.default_rng(start_ss), b.mean / (b.mean + mean_idle)))

    def start(self) -> None:
        """Each class in equilibrium at time 0, and the first owner arrival on idle GPUs."""
        for s, arr in enumerate(self.arrivals):
            if arr is not None:
                draws, rng, f = arr
                for _ in range(int(rng.binomial(self.capacity[s], f))):
                    self.claim(s, 1, 0.0, 0.0)
                self._push(draws.next(), s, 0)

    def _push(self, t: float, s: int, units: int) -> None:
        self.order += 1
        heapq.heappush(self.pending, (t, self.order, s, units))
        self.next_due = self.pending[0][0]

    def catch_up(self, now: float) -> None:
        """Replay the owner arrivals on idle GPUs (and the busy periods that ended) up to `now`."""
        pending = self.pending
        while pending and pending[0][0] <= now:
            t, _, s, units = heapq.heappop(pending)
            if units:   # a busy period that ended before `now`
                self.free[s] += units
                self.held.change(s, -units, t)
                continue
            draws, rng, _f = self.arrivals[s]   # type: ignore[misc]
            if rng.random() * self.capacity[s] < self.free[s]:   # the GPU the owner wants is free
                self.claim(s, 1, t, now)
            self._push(t + draws.next(), s, 0)
        self.next_due = pending[0][0] if pending else math.inf

    def claim(self, s: int, units: int, t: float, now: float) -> None:
        """The owners take `units` GPUs of class `s` at time `t` (≤ `now`): free ones, or those
        of a backfill job evicted at `t` = `now`; they give them back after a busy period."""
        busy = self.busy[s]
        hours = busy.next() if busy is not None else 0.0
        if hours <= 0.0:
            return
        self.free[s] -= units
        self.held.change(s, units, t)
        if t + hours <= now:
            self._push(t + hours, s, units)
        else:
            self.env.timeout(t + hours - now, (s, units)).callbacks.append(self._leaves)

    def _leaves(self, ev: Any) -> None:
        s, units = ev.value
        now = self.env.now
        if now >= self.next_due:
            self.catch_up(now)
        self.free[s] += units
        self.held.change(s, -units, now)
        self.on_release(now)

    def hours(self, end: float) -> list[float]:
        """Owner-busy GPU-hours per slot class in the window, up to `end`."""
        self.catch_up(end)
        return self.held.close(end)
