"""Named random streams: one `SeedSequence(seed)` spawns a child per purpose.

Children, in order: arrivals, work (the workload's, drawn up front), evictions (one grandchild
per slot class), background (one grandchild per background entry: arrivals, work, users),
owner (one grandchild per slot class, split by `simulator.owners` into busy periods, arrivals
on idle GPUs and the start in equilibrium). A child's
stream does not depend on how many siblings are spawned, so changing a policy (a checkpoint
interval, a request) leaves the workload's arrivals and work unchanged: common random numbers.
"""

from __future__ import annotations

import numpy as np

from simulator.distributions import Distribution

STREAMS = ("arrivals", "work", "evictions", "background", "owner")


def spawn_streams(seed: int | np.random.SeedSequence) -> list[np.random.SeedSequence]:
    """The named children of `seed` (a SeedSequence is copied, never advanced)."""
    if isinstance(seed, np.random.SeedSequence):
        root = np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key)
    else:
        root = np.random.SeedSequence(int(seed))
    return root.spawn(len(STREAMS))


class Draws:
    """Draws from one distribution and one stream, taken in blocks (the sequence is the same
    as drawing one at a time from that stream)."""

    __slots__ = ("dist", "rng", "block", "buf", "i")

    def __init__(self, dist: Distribution, rng: np.random.Generator, block: int = 1024) -> None:
        self.dist, self.rng, self.block = dist, rng, block
        self.buf: list[float] = []
        self.i = 0

    def next(self) -> float:
        if self.i >= len(self.buf):
            self.buf = np.asarray(self.dist.sample(self.rng, self.block), dtype=float).tolist()
            self.i = 0
        v = self.buf[self.i]
        self.i += 1
        return v
