"""From a trace: its observation window, its own GPU utilization, background load for a
scenario, and a pool made from its node list.

Choices (stated in every report):

* **Fractional GPUs** (`fractional="weight"`, the default): a pod holding `gpu_milli`/1000 of
  one GPU counts as that fraction of a GPU: in the trace's utilization, and in the replay as a
  one-GPU job whose duration is scaled by the fraction (GPU-seconds are conserved; the
  simulator's slots hold one job per GPU, so this packs sharing pods perfectly).
  `fractional="whole"` instead gives each sharing pod a whole GPU for its whole duration (an
  upper bound on the load it puts on a pool without GPU sharing).
* **Window**: the trace is observed from `window_start` to its last timestamp. A trace lists only
  jobs alive during the observation, so jobs submitted long before it are the survivors of an
  earlier period (left truncation). The window starts at the first recorded end of any job, or
  at the 1% quantile of submissions (the lower one) if that is earlier: a trace without
  survivors starts at its first submissions; in Alibaba's sample 31 GPU pods created up to 115
  days before the first recorded end are survivors. Jobs submitted before the window are *survivors*: counted in the trace's
  utilization (from the window start), but not in the derived arrival process.
* **Durations** are start → end (`deletion − scheduled` for Alibaba), clipped at the window's
  end. Censored jobs (still running or pending when the trace ended) keep their observed
  duration, a lower bound; the number of them is reported.
* **Never-started jobs** (Alibaba `Pending`, a generic empty `start_s`) used no GPU: they are
  left out of the load (and counted). **CPU-only jobs** (0 GPUs) are left out too.
* **GPU-type constraints** (Alibaba `gpu_spec`, a generic `gpu_type`) are not replayed: a
  background job runs on any GPU (a note says how many jobs had one).
* **Arrivals**: per GPU-count class (1, 2, 4, 8 GPUs, ...), the empirical inter-arrival times
  (hours) of the class's jobs submitted in the window; each class becomes one background entry
  with its own empirical durations. Users: the trace names none; `users` (default 20) is an
  assumption that matters only for per-user limits and fair share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from advisor.errors import InputError
from advisor.traces.read import Trace
from simulator.catalog import load_catalog

FRACTIONAL = ("weight", "whole")
DEFAULT_USERS = 20
# Alibaba's GPU models (node list `model`) → catalog GPUs.
ALIBABA_GPUS = {"T4": "T4", "P100": "P100-PCIE-16GB", "V100M16": "V100-PCIE-16GB",
                "V100M32": "V100-SXM2-32GB", "A10": "A10"}
UNDISCLOSED = ("G1", "G2", "G3")
# G1–G3 are not disclosed by Alibaba; assumed to be A10-class data-center GPUs. In the replay
# every GPU runs at speed 1 and the trace's jobs ask for no capability or memory, so the choice
# does not change the replay; it matters only if a scenario's workload runs on this pool.
DEFAULT_UNDISCLOSED_GPU = "A10"


@dataclass(frozen=True)
class Window:
    start_s: float
    end_s: float

    @property
    def hours(self) -> float:
        return (self.end_s - self.start_s) / 3600.0


def window(trace: Trace) -> Window:
    j = trace.jobs
    end = float(np.nanmax(j[["submit_s", "start_s", "end_s"]].to_numpy(dtype=float)))
    started = j[j["start_s"].notna()]
    first_end = float(started["end_s"].min()) if len(started) else end
    q01 = float(np.quantile(j["submit_s"].to_numpy(dtype=float), 0.01, method="lower"))
    start = min(first_end, q01)
    if not end > start:
        raise InputError("--background-trace", trace.source, "spans no time.",
                         "give a trace whose jobs span some time.")
    return Window(start, end)


def _check_fractional(fractional: str) -> None:
    if fractional not in FRACTIONAL:
        raise InputError("fractional", fractional, f"must be one of {', '.join(FRACTIONAL)}.",
                         "use weight (GPU-seconds conserved) or whole (a GPU per sharing pod).")


def gpu_weight(jobs: pd.DataFrame, fractional: str = "weight") -> np.ndarray:
    """GPUs each job holds: whole GPUs, × its share of the GPU under `weight`."""
    _check_fractional(fractional)
    gpus = jobs["gpus"].to_numpy(dtype=float)
    if fractional == "weight":
        return gpus * jobs["gpu_fraction"].to_numpy(dtype=float)
    return gpus


def busy_gpu_seconds(jobs: pd.DataFrame, win: Window, fractional: str = "weight") -> float:
    start = jobs["start_s"].to_numpy(dtype=float)
    end = jobs["end_s"].to_numpy(dtype=float)
    ok = ~np.isnan(start)
    overlap = np.clip(np.minimum(end, win.end_s) - np.maximum(start, win.start_s), 0.0, None)
    return float(np.sum(np.where(ok, overlap, 0.0) * gpu_weight(jobs, fractional)))


@dataclass(frozen=True)
class TraceUtilization:
    """The trace's own GPU utilization over its window."""

    gpus: int
    window_hours: float
    utilization: float              # all jobs, survivors included
    utilization_in_window: float    # jobs submitted in the window only (what a replay from empty sees)
    utilization_survivors: float    # jobs submitted before the window
    fractional: str

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def trace_utilization(trace: Trace, fractional: str = "weight") -> TraceUtilization:
    """GPU-seconds busy / (GPUs in the node list × window)."""
    if trace.nodes is None:
        raise InputError("--nodes", None, "is missing: the trace's utilization needs its GPUs.",
                         "give the node list with --nodes NODES.csv.")
    win = window(trace)
    gpus = int(trace.nodes["gpus"].sum())
    cap = gpus * (win.end_s - win.start_s)
    j = trace.jobs
    inside = j["submit_s"] >= win.start_s
    u_in = busy_gpu_seconds(j[inside], win, fractional) / cap
    u_pre = busy_gpu_seconds(j[~inside], win, fractional) / cap
    return TraceUtilization(gpus=gpus, window_hours=win.hours, utilization=u_in + u_pre,
                            utilization_in_window=u_in, utilization_survivors=u_pre,
                            fractional=fractional)


@dataclass
class DerivedBackground:
    """Background entries derived from a trace, with what was left out and why."""

    entries: list[dict[str, Any]] = field(repr=False)
    classes: list[dict[str, Any]]
    counts: dict[str, int]
    window_hours: float
    fractional: str
    notes: list[str]

    def expected_window_gpus(self) -> float:
        """GPUs busy on average over a replay of the window from an empty pool, without
        queueing: Σ_c λ_c · g_c · E[min(D, W − t)] for t uniform on [0, W] (a job submitted at
        t is cut off at the window's end W), i.e. E[D − D²/2W] for D < W and W/2 beyond."""
        w = self.window_hours
        total = 0.0
        for entry, c in zip(self.entries, self.classes, strict=True):
            d = np.asarray(entry["work_hours"]["values"], dtype=float)
            kept = np.where(d >= w, w / 2.0, d - d * d / (2.0 * w))
            total += c["rate_per_hour"] * c["gpus"] * float(np.mean(kept))
        return total

    @property
    def offered_gpus(self) -> float:
        """GPUs kept busy on average by the derived load: Σ λ_c · E[duration_c] · gpus_c."""
        return float(sum(c["rate_per_hour"] * c["mean_hours"] * c["gpus"] for c in self.classes))

    def to_dict(self) -> dict[str, Any]:
        return {"classes": self.classes, "counts": self.counts, "window_hours": self.window_hours,
                "fractional": self.fractional, "offered_gpus": self.offered_gpus,
                "expected_window_gpus": self.expected_window_gpus(),
                "notes": self.notes}


def derive_background(trace: Trace, *, fractional: str = "weight", users: int = DEFAULT_USERS,
                      request: dict[str, Any] | None = None) -> DerivedBackground:
    """One background entry per GPU-count class: empirical inter-arrivals and durations (hours)."""
    _check_fractional(fractional)
    if users < 1:
        raise InputError("users", users, "must be at least 1.", "give e.g. 20.")
    win = window(trace)
    j = trace.jobs
    never = j["start_s"].isna()
    cpu_only = j["gpus"] <= 0
    survivor = j["submit_s"] < win.start_s
    load = j[~never & ~cpu_only & ~survivor]
    counts = {"jobs": len(j), "never_started": int(never.sum()),
              "cpu_only": int((cpu_only & ~never).sum()),
              "survivors": int((survivor & ~never & ~cpu_only).sum()),
              "replayed": len(load), "censored_replayed": int(load["censored"].sum()),
              "fractional_gpu": int((load["gpu_fraction"] < 1).sum())}
    if load.empty:
        raise InputError("--background-trace", trace.source, "holds no GPU job that started in "
                         "its window.", "give a trace with GPU jobs.")
    weight = gpu_weight(load, fractional) / load["gpus"].to_numpy(dtype=float)
    dur_h = ((np.minimum(load["end_s"].to_numpy(dtype=float), win.end_s)
              - load["start_s"].to_numpy(dtype=float)) / 3600.0) * weight
    dur_h = np.maximum(dur_h, 1.0 / 3600.0)  # at least a second
    entries, classes = [], []
    for g in sorted(load["gpus"].unique()):
        mask = (load["gpus"] == g).to_numpy()
        submit = np.sort(load["submit_s"].to_numpy(dtype=float)[mask])
        gaps = np.diff(submit) / 3600.0 if len(submit) > 1 else np.array([win.hours])
        if not np.any(gaps > 0):
            gaps = np.array([win.hours / len(submit)])
        durations = dur_h[mask]
        req = {**(request or {}), "gpus": int(g)}
        entries.append({"name": f"trace-{int(g)}gpu", "users": int(users),
                        "arrival": {"dist": "empirical", "values": _rounded(gaps)},
                        "work_hours": {"dist": "empirical", "values": _rounded(durations)},
                        "request": req})
        classes.append({"gpus": int(g), "jobs": int(mask.sum()),
                        "rate_per_hour": 1.0 / float(np.mean(gaps)),
                        "mean_hours": float(np.mean(durations)),
                        "p50_hours": float(np.median(durations)),
                        "max_hours": float(np.max(durations))})
    notes = [f"trace {trace.source}: {counts['replayed']} GPU jobs replayed in "
             f"{len(classes)} GPU-count classes over {win.hours:.0f} h; left out: "
             f"{counts['never_started']} never started, {counts['cpu_only']} CPU-only, "
             f"{counts['survivors']} submitted before the window; {counts['censored_replayed']} "
             f"replayed durations are censored (lower bounds); fractional GPUs: {fractional}"]
    constrained = int((load["gpu_type"].astype(str).str.strip() != "").sum())
    if constrained:
        notes.append(f"{constrained} replayed jobs name GPU types they may run on (gpu_spec / "
                     "gpu_type); the derived background ignores these constraints and may run "
                     "them on any GPU")
    return DerivedBackground(entries=entries, classes=classes, counts=counts,
                             window_hours=win.hours, fractional=fractional, notes=notes)


def _rounded(x: np.ndarray) -> list[float]:
    return [round(float(v), 7) for v in x]


def trace_pool(trace: Trace, *, undisclosed_gpu: str = DEFAULT_UNDISCLOSED_GPU) -> dict[str, Any]:
    """An inline pool mapping (shared slots, no tiers) from the trace's node list."""
    if trace.nodes is None:
        raise InputError("--nodes", None, "is missing: the replay pool needs the trace's GPUs.",
                         "give the node list with --nodes NODES.csv.")
    catalog = load_catalog()
    slots, assumed = [], []
    for model_raw, count_raw in zip(trace.nodes["gpu_type"], trace.nodes["gpus"], strict=True):
        model, count = str(model_raw), int(count_raw)
        if model in ALIBABA_GPUS:
            gpu = ALIBABA_GPUS[model]
        elif model in UNDISCLOSED:
            gpu = catalog.get(undisclosed_gpu, "undisclosed_gpu").name
            assumed.append(model)
        elif model in catalog:
            gpu = catalog.get(model).name
        else:
            raise InputError("--nodes gpu_type", model, "is not a GPU in the catalog.",
                             "use catalog names (see `advisor gpus`).", suggestions=catalog.suggest(model))
        slots.append({"gpu": gpu, "count": count, "owner": "shared", "label": model,
                      "source": f"{trace.nodes_source}: {count} GPUs of model {model}"})
    assumptions = []
    if assumed:
        assumptions.append(f"{', '.join(assumed)}: undisclosed models in the trace, assumed "
                           f"{undisclosed_gpu}; the replay runs every GPU at speed 1.")
    return {"name": "trace-pool", "slots": slots, "assumptions": assumptions,
            "source": str(trace.nodes_source)}


def capacity_gpus(pool: dict[str, Any]) -> int:
    return int(sum(s["count"] for s in pool["slots"]))


def finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


__all__ = ["ALIBABA_GPUS", "DEFAULT_UNDISCLOSED_GPU", "DEFAULT_USERS", "DerivedBackground",
           "FRACTIONAL", "TraceUtilization", "Window", "busy_gpu_seconds", "derive_background",
           "gpu_weight", "trace_pool", "trace_utilization", "window"]
