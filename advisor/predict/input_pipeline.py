"""The input pipeline as a floor on step time, and how many CPUs keep a GPU fed.

The profile measures `data_wait_s`: per optimizer step, how long the training loop waited for
its next batch(es) on the measuring machine. From it, the loader's *production time per step*
P (CPU-seconds of loading, decoding and augmenting one step's batches) is estimated:

* `num_workers = 0`: the main process loads synchronously, so the wait *is* the production:
  P = data_wait.
* `num_workers = w > 0` and the loop waited (wait > 5 % of the step): the loader was the
  bottleneck; w workers deliver one step's data every step, so P ≈ w × step time.
* `num_workers = w > 0` and the loop hardly waited: the loader kept up; all we know is
  P ≥ w × data_wait (used, and flagged as a lower bound) and P ≤ w × step time.

On a GPU, with the same w: input time per step = P / max(w, 1), and
    predicted step = max(GPU compute step, input time per step)
(an input-bound job does not speed up on a faster GPU). With `num_workers = 0` loading and
compute really run one after the other; the max() then understates the step by at most the
smaller of the two. CPUs to keep the GPU fed = ceil(P / compute step) + 1 (the main process),
assuming the pool's cores are as fast per core as the measuring machine's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from advisor.predict.profile_input import ProfileView

LOADER_LIMITED_FRACTION = 0.05


@dataclass(frozen=True)
class InputModel:
    production_s: float          # CPU-seconds of loading per optimizer step (P)
    workers: int                 # DataLoader num_workers as profiled
    basis: str
    lower_bound: bool

    def time_per_step_s(self, workers: int | None = None) -> float:
        w = self.workers if workers is None else workers
        return self.production_s / max(w, 1)

    def cpus_to_feed(self, compute_step_s: float) -> int:
        if self.production_s <= 0 or compute_step_s <= 0:
            return 1
        return int(math.ceil(self.production_s / compute_step_s - 1e-9)) + 1


def input_model(view: ProfileView) -> InputModel:
    w = view.num_workers
    wait = view.data_wait_s
    if w == 0:
        return InputModel(wait, 0, "num_workers=0: the measured data wait is the loading time", False)
    if wait > LOADER_LIMITED_FRACTION * view.step_time_s:
        return InputModel(w * view.step_time_s, w,
                          f"the loader limited the measured run: {w} workers × step time", False)
    return InputModel(w * wait, w,
                      f"the loader kept up on the measuring machine: at least {w} workers × data wait "
                      "(a lower bound; a much faster GPU may become input-bound sooner)", True)
