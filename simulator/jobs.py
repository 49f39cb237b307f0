"""The engine's per-job state: typed columns (`array.array`), and the codes it stores in them.

Each field is declared once, below, with its type code and initial value: `Jobs` holds every
job (the workload's tasks first, then background jobs as they arrive), `Tasks` the per-task
record of the workload's tasks (the columns of `Results.tasks`). A column is read and written by
job index like a list, costs 1-8 bytes a job instead of a Python object, and becomes a numpy
array without a copy (`Tasks.column`). A run in progress is not stored per job: its end event
carries it as a `Run` tuple.
"""

from __future__ import annotations

import enum
import math
from array import array
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

# the widest integer column (a bit per GPU type in `Tasks.gpu_types`)
MASK_BITS = 63


class State(enum.IntEnum):
    """A workload task's state; `label` is the name in `Results.tasks["state"]`."""

    PENDING = 0  # not submitted yet
    WAITING = 1
    RUNNING = 2
    COMPLETED = 3
    HELD = 4

    @property
    def label(self) -> str:
        return self.name.lower()


class RunEnd(enum.IntEnum):
    """How a run ends, known when it starts (the earliest of these)."""

    FINISH = 0  # the job's work is done
    EXIT = 1  # exit-driven checkpoint (exit 85): the job restarts in place on the same slot
    EVICT = 2  # the slot's time to eviction came first
    HOLD = 3  # the run reached its tier's (or the CPU slots') maximum hours: held
    VACATE = 4  # the same for an is_resumable job where the pool vacates and requeues it


# A run in progress, carried by the event that ends it:
# (job, slot class, start time, useful wall hours left at the start, restart cost, how it ends,
# when the claim began (the tier clock), when the slot evicts the claim (inf: never)).
Run = tuple[int, int, float, float, float, RunEnd, float, float]


def column(code: str, initial: float) -> Any:
    """Declare a typed column: an `array.array` type code and every job's initial value."""
    return field(metadata={"code": code, "initial": initial})


def _allocate(cls: type, n: int, **given: array) -> dict[str, array]:
    out: dict[str, array] = {}
    for f in fields(cls):
        if f.name in given:
            out[f.name] = given[f.name]
        else:
            out[f.name] = array(f.metadata["code"], [f.metadata["initial"]]) * n
    return out


def doubles(values: np.ndarray) -> array:
    """A float64 column holding `values`."""
    out = array("d")
    out.frombytes(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return out


@dataclass(slots=True)
class Jobs:
    """Every job's state between its runs."""

    queue: array = column("i", 0)  # index of its queue (one per user and kind of job)
    work: array = column("d", 0.0)  # work in reference-GPU hours
    progress: array = column("d", 0.0)  # work done and kept (ended in a checkpoint)
    seq: array = column("q", 0)  # submission order: its place in the queue, kept when requeued
    runs: array = column("i", 0)  # runs started (every run but the first pays the restart)
    enqueued: array = column("d", 0.0)  # when it last joined the queue
    evictions: array = column("i", 0)  # interruptions so far (held at the pool's limit)

    @classmethod
    def allocate(cls, work: np.ndarray) -> Jobs:
        """The workload's tasks, with their work drawn up front; all in queue 0."""
        return cls(**_allocate(cls, len(work), work=doubles(work)))

    def __len__(self) -> int:
        return len(self.queue)

    def append(self, queue: int, work: float, now: float) -> int:
        """Add a background job arriving `now`; its index."""
        self.queue.append(queue)
        self.work.append(work)
        self.progress.append(0.0)
        self.seq.append(0)
        self.runs.append(0)
        self.enqueued.append(now)
        self.evictions.append(0)
        return len(self.queue) - 1


@dataclass(slots=True)
class Tasks:
    """The per-task record of the workload's tasks (hours, counts, GPU-hours)."""

    submit: array = column("d", math.nan)
    first_start: array = column("d", math.nan)
    finish: array = column("d", math.nan)
    wait: array = column("d", 0.0)  # waiting for a match, over every run
    evictions: array = column("q", 0)
    holds: array = column("q", 0)
    checkpoint_exits: array = column("q", 0)
    starts: array = column("q", 0)
    gpu_types: array = column("q", 0)  # a bit per GPU type it ran on (engine's type index)
    good: array = column("d", 0.0)
    lost: array = column("d", 0.0)
    overhead: array = column("d", 0.0)
    cpu_core_hours: array = column("d", 0.0)
    state: array = column("b", State.PENDING)

    @classmethod
    def allocate(cls, n: int) -> Tasks:
        return cls(**_allocate(cls, n))

    def column(self, name: str) -> np.ndarray:
        """Column `name` as a numpy array sharing its memory."""
        values: array = getattr(self, name)
        return np.frombuffer(values, dtype=values.typecode) if len(values) else np.array(
            [], dtype=values.typecode)

    def result_columns(self, jobs: Jobs, end: float, type_names: list[str]) -> dict[str, Any]:
        """The columns of `Results.tasks` at the run's `end` (a task still waiting has waited up
        to `end`); `type_names[i]` is the GPU type of bit i of `gpu_types`."""
        n = len(self.state)
        state = self.column("state")
        wait = self.column("wait")
        waiting = state == State.WAITING
        wait[waiting] += end - np.frombuffer(jobs.enqueued, dtype=np.float64)[:n][waiting]
        masks, mask_index = np.unique(self.column("gpu_types"), return_inverse=True)
        mask_labels = ["+".join(type_names[i] for i in range(len(type_names)) if int(mask) >> i & 1)
                       for mask in masks]
        return {
            "task": np.arange(n),
            "submit_hours": self.column("submit"),
            "first_start_hours": self.column("first_start"),
            "finish_hours": self.column("finish"),
            "total_wait_hours": wait,
            "evictions": self.column("evictions"),
            "holds": self.column("holds"),
            "checkpoint_exits": self.column("checkpoint_exits"),
            "starts": self.column("starts"),
            # categoricals: a code per task, not a string object (10^6 tasks: 1 MB, not 60)
            "gpu_types": pd.Categorical.from_codes(mask_index.reshape(-1), dtype=pd.CategoricalDtype(mask_labels)),
            "work_hours": np.frombuffer(jobs.work, dtype=np.float64)[:n],
            "good_gpu_hours": self.column("good"),
            "lost_gpu_hours": self.column("lost"),
            "overhead_gpu_hours": self.column("overhead"),
            "cpu_core_hours": self.column("cpu_core_hours"),
            "state": pd.Categorical.from_codes(state, dtype=STATE_DTYPE),
        }


STATE_DTYPE = pd.CategoricalDtype([s.label for s in State])
