"""What one run returns: a per-task DataFrame and a summary of metrics.

Per task (one row per workload task): `submit_hours`, `first_start_hours`, `finish_hours`,
`turnaround_hours`, `total_wait_hours` (all time spent waiting for a match, over every run;
for a task still waiting at the end, up to the end), `evictions`, `holds`, `checkpoint_exits`,
`starts`, `gpu_types` (the GPU types it ran on, joined by "+"), `work_hours` (reference-GPU
hours), `good_gpu_hours`, `lost_gpu_hours`, `overhead_gpu_hours` (see `simulator.engine`),
`cpu_core_hours`, `state` (completed, held, running, waiting, pending).

Summary (tasks submitted before `warmup_hours` are left out; time averages are taken over the
window from `warmup_hours` to the end: the horizon, or the moment the last task completed or
was held):
`makespan_hours` (first counted submission to last completion), `mean_wait_hours` (over tasks
that started), `mean_turnaround_hours` and `p90_turnaround_hours` (completed tasks),
`evictions_per_task`, `goodput_fraction` (good / all GPU-hours the workload used),
`pool_utilization` (busy GPUs of every user / GPUs, time-averaged over the window),
`utilization_by_gpu` {GPU type: fraction}, `cpu_utilization`, `tasks`, `tasks_completed`,
`tasks_held`, `tasks_running`, `tasks_waiting` (of the tasks submitted in the window),
`tasks_not_submitted` (the horizon came first), `mean_tasks_waiting` (time-average number of
workload tasks waiting; Little's law: ≈ `submitted_per_hour` × `mean_wait_hours`),
`submitted_per_hour`, `window_hours`, `good_gpu_hours`, `lost_gpu_hours`,
`overhead_gpu_hours`, `background_jobs`, `gpu_share` (the workload's GPU-hours, good + lost +
overhead, over the pool's GPUs × `makespan_hours`: the share of all GPUs it held on average from
its first submission to its last result; NaN when no task completed), `owner_busy_fraction`
(owned GPUs held by their owners, time-averaged over the window; NaN without owned GPUs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from simulator.scenario import Scenario

HEADLINE = ("makespan_hours", "mean_wait_hours", "mean_turnaround_hours", "p90_turnaround_hours",
            "evictions_per_task", "goodput_fraction", "pool_utilization", "tasks_completed",
            "tasks_held")


# the columns `summarize` reads
SUMMARY_COLUMNS = ("state", "submit_hours", "finish_hours", "first_start_hours", "good_gpu_hours",
                   "lost_gpu_hours", "overhead_gpu_hours", "total_wait_hours", "evictions")


class Levels:
    """Levels that change at events (GPUs busy per slot class, tasks waiting), each with its
    time integral over the statistics window, from `start` on (level × hours)."""

    __slots__ = ("start", "level", "area", "last")

    def __init__(self, n: int, start: float) -> None:
        self.start = start
        self.level = [0] * n
        self.area = [0.0] * n
        self.last = [0.0] * n

    def change(self, i: int, delta: int, now: float) -> None:
        last = self.last[i]
        t0 = last if last > self.start else self.start
        if now > t0:
            self.area[i] += self.level[i] * (now - t0)
        self.last[i] = now
        self.level[i] += delta

    def close(self, end: float) -> list[float]:
        """Every integral up to `end`."""
        for i in range(len(self.level)):
            self.change(i, 0, end)
        return self.area


@dataclass(frozen=True)
class Measures:
    """Time integrals the engine keeps over the statistics window."""

    window_start: float
    window_end: float
    capacity: dict[str, float]  # GPUs (or CPU cores under "CPU") per type
    busy_hours: dict[str, float]  # busy unit-hours per type within the window
    waiting_task_hours: float
    background_jobs: int = 0
    owned_gpus: int = 0               # GPUs of owned slot classes
    owner_busy_hours: float = 0.0     # GPU-hours their owners held them (simulator.owners)


@dataclass(frozen=True, eq=False)
class Results:
    tasks: pd.DataFrame
    summary: dict[str, Any]
    scenario: str = ""
    measures: Measures | None = field(default=None, repr=False)
    trace: pd.DataFrame | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "summary": self.summary,
                "tasks": self.tasks.to_dict(orient="list")}


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else math.nan


def _labels(column: pd.Series) -> Any:
    """`is_(label)`: a boolean mask of the rows with that label; a categorical column (the
    engine's) is compared by its codes, without building a string per row."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        index = {c: i for i, c in enumerate(column.cat.categories)}
        return lambda label: codes == index.get(label, -2)
    values = column.to_numpy()
    return lambda label: values == label


def summarize(tasks: pd.DataFrame, m: Measures) -> dict[str, Any]:
    keep = (tasks["submit_hours"] >= m.window_start).to_numpy()  # NaN (never submitted) drops out
    counted = tasks if keep.all() else tasks.loc[keep, list(SUMMARY_COLUMNS)]
    state = _labels(counted["state"])
    done = state("completed")
    submit = counted["submit_hours"].to_numpy(dtype=float)
    finish = counted["finish_hours"].to_numpy(dtype=float)
    started = ~np.isnan(counted["first_start_hours"].to_numpy(dtype=float))
    turnaround = (finish - submit)[done]
    window = max(m.window_end - m.window_start, 0.0)
    good = float(counted["good_gpu_hours"].sum())
    lost = float(counted["lost_gpu_hours"].sum())
    over = float(counted["overhead_gpu_hours"].sum())
    used = good + lost + over
    gpu_types = [g for g in m.capacity if g != "CPU"]
    gpus = sum(m.capacity[g] for g in gpu_types)
    busy = sum(m.busy_hours[g] for g in gpu_types)
    n = len(counted)
    first_submit = float(np.nanmin(submit)) if n and not np.all(np.isnan(submit)) else math.nan
    in_window = int(np.count_nonzero((submit >= m.window_start) & (submit <= m.window_end)))
    summary: dict[str, Any] = {
        "tasks": n,
        "tasks_completed": int(done.sum()),
        "tasks_held": int(state("held").sum()),
        "tasks_running": int(state("running").sum()),
        "tasks_waiting": int(state("waiting").sum()),
        "tasks_not_submitted": int(tasks["submit_hours"].isna().sum()),
        "makespan_hours": float(np.max(finish[done]) - first_submit) if done.any() else math.nan,
        "mean_wait_hours": _mean(counted["total_wait_hours"].to_numpy(dtype=float)[started]),
        "mean_turnaround_hours": _mean(turnaround),
        "p90_turnaround_hours": float(np.percentile(turnaround, 90)) if len(turnaround) else math.nan,
        "evictions_per_task": float(counted["evictions"].sum() / n) if n else math.nan,
        "goodput_fraction": good / used if used > 0 else math.nan,
        "pool_utilization": busy / (gpus * window) if gpus and window > 0 else math.nan,
        "utilization_by_gpu": {g: (m.busy_hours[g] / (m.capacity[g] * window) if window > 0
                                   else math.nan) for g in gpu_types},
        "mean_tasks_waiting": m.waiting_task_hours / window if window > 0 else math.nan,
        "submitted_per_hour": in_window / window if window > 0 else math.nan,
        "window_hours": window,
        "good_gpu_hours": good,
        "lost_gpu_hours": lost,
        "overhead_gpu_hours": over,
        "background_jobs": m.background_jobs,
    }
    summary["owner_busy_fraction"] = (m.owner_busy_hours / (m.owned_gpus * window)
                                      if m.owned_gpus and window > 0 else math.nan)
    span = summary["makespan_hours"]
    summary["gpu_share"] = used / (gpus * span) if gpus and span > 0 else math.nan
    if "CPU" in m.capacity:
        summary["cpu_utilization"] = (m.busy_hours["CPU"] / (m.capacity["CPU"] * window)
                                      if window > 0 else math.nan)
    return summary


def build_results(columns: dict[str, Any], measures: Measures, scenario: Scenario,
                  trace: pd.DataFrame | None = None) -> Results:
    tasks = pd.DataFrame(columns, copy=False)  # the engine's columns, not copied
    tasks.insert(3, "turnaround_hours", tasks["finish_hours"] - tasks["submit_hours"])
    return Results(tasks=tasks, summary=summarize(tasks, measures), scenario=scenario.name,
                   measures=measures, trace=trace)
