"""The input pipeline as a floor on step time, and how many CPUs keep a GPU fed.

The loader's *production time per step* P is the CPU-seconds of loading, decoding and
augmenting one step's batches:

* measured (`input_pipeline.cpu_s_per_step`, profiles since the loader was measured): the CPU
  time the DataLoader worker processes spent per measured step (/proc), plus the main thread's
  CPU time inside ``DataLoader.__next__``. CPU time, not waiting time, so a busy or a 2-core
  measuring machine does not inflate it.
* inferred (older profiles, from `data_wait_s`): ``num_workers = 0``: the wait is the
  production, P = data_wait; ``w > 0`` and the loop waited (> 5 % of the step): P ≈ w × step
  time; ``w > 0`` and the loop hardly waited: P ≥ w × data_wait (a lower bound).

On a GPU, with w workers: input time per step = P / max(w, 1) (the floor scales with the workers
the job will have), and predicted step = max(GPU compute step, input time per step): an
input-bound job does not speed up on a faster GPU. With ``num_workers = 0`` loading and compute
run one after the other; the max() then understates the step by at most the smaller of the two.

CPUs to keep the GPU fed = ceil(P / compute step) + 1 (the main process), but never more than
the script can use without a change: its num_workers + 1. When more would help, the advice
names the change ("set num_workers=8 to use 9 CPUs"). The pool's cores are assumed as fast per
core as the measuring machine's.
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
    measured: bool = False

    def time_per_step_s(self, workers: int | None = None) -> float:
        w = self.workers if workers is None else workers
        return self.production_s / max(w, 1)

    def cpus_needed(self, compute_step_s: float) -> int:
        """CPUs (workers + main) that would keep a GPU of this compute step fed."""
        if self.production_s <= 0 or compute_step_s <= 0:
            return 1
        return int(math.ceil(self.production_s / compute_step_s - 1e-9)) + 1

    @property
    def usable_cpus(self) -> int:
        """What the script uses without a change: its workers and the main process."""
        return self.workers + 1

    def cpus_to_feed(self, compute_step_s: float) -> int:
        return min(self.cpus_needed(compute_step_s), self.usable_cpus)

    def advice(self, compute_step_s: float) -> str | None:
        """The change to the script that more CPUs would need, or None when the loader keeps
        up as written (its time per step does not exceed the GPU's compute step)."""
        need = self.cpus_needed(compute_step_s)
        if need <= self.usable_cpus or self.time_per_step_s() <= compute_step_s:
            return None
        return (f"set num_workers={need - 1} in the DataLoader to use {need} CPUs "
                f"(it has {self.workers}: {self.usable_cpus} usable)")


def input_model(view: ProfileView) -> InputModel:
    w = view.num_workers
    if view.input_cpu_s is not None:
        return InputModel(view.input_cpu_s, w, "measured: CPU time of the DataLoader workers and "
                          "the main thread's loading, per step", False, measured=True)
    wait = view.data_wait_s
    if w == 0:
        return InputModel(wait, 0, "num_workers=0: the measured data wait is the loading time", False)
    if wait > LOADER_LIMITED_FRACTION * view.step_time_s:
        return InputModel(w * view.step_time_s, w,
                          f"the loader limited the measured run: {w} workers × step time", False)
    return InputModel(w * wait, w,
                      f"the loader kept up on the measuring machine: at least {w} workers × data wait "
                      "(a lower bound; a much faster GPU may become input-bound sooner)", True)
