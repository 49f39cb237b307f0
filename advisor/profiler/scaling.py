"""Batch-size sweep: profile a script at several batch sizes and fit memory and time against them.

Memory and step time of a training step are close to affine in the batch size (parameters,
gradients and optimizer state are fixed; activations and compute grow with each sample), so a
least-squares line (scikit-learn) through the measured points predicts both at batch sizes not
measured, and the largest batch that fits each GPU of the catalog:

    largest batch = floor((GPU memory − CUDA context − intercept) / bytes per sample)

The GPU memory is the catalog's `memory_gb` (GiB) less a 0.5 GiB CUDA context allowance
(docs/DOMAIN.md §5: the context takes 300–500 MB beyond the allocator's counters).
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.linear_model import LinearRegression

from advisor.errors import DomainFailure, InputError

CUDA_CONTEXT_BYTES = 512 * 2**20


def parse_batch_sizes(text: str) -> list[int]:
    """"8,16,32" → [8, 16, 32]; InputError for anything else."""
    try:
        sizes = [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise InputError("--batch-sizes", text, "must be whole numbers separated by commas.",
                         "give e.g. --batch-sizes 8,16,32") from None
    if len(sizes) < 2 or any(s <= 0 for s in sizes) or len(set(sizes)) != len(sizes):
        raise InputError("--batch-sizes", text, "needs at least two different positive sizes.",
                         "give e.g. --batch-sizes 8,16,32")
    return sorted(sizes)


def batch_args(template: str, batch_size: int) -> list[str]:
    """The script arguments that set one batch size, from a template such as "--bs {bs}"."""
    if "{bs}" not in template:
        raise InputError("--batch-arg", template, "must contain {bs} where the size goes.",
                         'give e.g. --batch-arg "--batch-size {bs}"')
    return shlex.split(template.replace("{bs}", str(batch_size)))


def gpu_memory_table() -> list[tuple[str, float]]:
    """(name, memory_gb) of each GPU in the catalog."""
    from simulator.catalog import load_catalog
    return [(g.name, float(g.memory_gb)) for g in load_catalog()]


def _fit(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    model = LinearRegression().fit(x.reshape(-1, 1), y)
    r2 = float(model.score(x.reshape(-1, 1), y)) if len(x) > 2 else 1.0
    return {"intercept": float(model.intercept_), "slope": float(model.coef_[0]), "r2": r2}


def fit_scaling(points: list[dict[str, Any]],
                gpus: Sequence[tuple[str, float]] | None = None) -> dict[str, Any]:
    """Fit memory and step time against batch size; the largest batch per GPU memory size."""
    bs = np.array([p["batch_size"] for p in points], dtype=float)
    mem = np.array([p["peak_device_bytes"] for p in points], dtype=float)
    step = np.array([p["step_time_s"] for p in points], dtype=float)
    mem_fit = _fit(bs, mem)
    time_fit = _fit(bs, step)
    rows = []
    for name, memory_gb in (gpus if gpus is not None else gpu_memory_table()):
        usable = memory_gb * 2**30 - CUDA_CONTEXT_BYTES
        if mem_fit["slope"] <= 0:
            largest = None  # memory does not grow with the batch: no limit from this fit
        else:
            largest = max(0, math.floor((usable - mem_fit["intercept"]) / mem_fit["slope"]))
        rows.append({"gpu": name, "memory_gb": memory_gb, "max_batch_size": largest})
    return {
        "points": points,
        "memory_fit": {"intercept_bytes": mem_fit["intercept"],
                       "bytes_per_sample": mem_fit["slope"], "r2": mem_fit["r2"]},
        "step_time_fit": {"intercept_s": time_fit["intercept"],
                          "seconds_per_sample": time_fit["slope"], "r2": time_fit["r2"]},
        "cuda_context_bytes": CUDA_CONTEXT_BYTES,
        "max_batch_by_gpu": rows,
        "note": "measured on this device; step times scale with it, memory carries over",
    }


def sweep(profile_one: Callable[[list[str]], dict[str, Any]], args: Sequence[str],
          batch_sizes: Sequence[int], template: str,
          progress: Callable[[str], None] | None = None) -> tuple[list[dict], dict[str, Any]]:
    """Profile at each batch size (`profile_one(script_args)`); return profiles and the fit."""
    profiles = []
    points = []
    for size in batch_sizes:
        if progress:
            progress(f"profiling at batch size {size}")
        try:
            prof = profile_one([*args, *batch_args(template, size)])
        except DomainFailure as exc:
            exc.details.setdefault("batch_size", size)
            raise
        if prof.get("batch_size") not in (None, size):
            prof.setdefault("warnings", []).append(
                f"asked for batch size {size} but the DataLoader gave {prof['batch_size']}; "
                "check --batch-arg")
        profiles.append(prof)
        points.append({"batch_size": size,
                       "peak_device_bytes": int(prof["peak_memory_bytes"]["device"]),
                       "step_time_s": float(prof["step_time_s"]["median"])})
    return profiles, fit_scaling(points)
