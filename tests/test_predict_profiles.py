"""Synthetic WorkloadProfiles for the prediction tests (`make_profile`), and checks that they
are what the profiler would write."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from advisor.profiler.schema import validate_profile

BASE: dict[str, Any] = {
    "schema_version": 1, "mode": "torch", "script": "train.py", "args": [],
    "device": {"kind": "cpu", "name": "Test CPU", "capability": None, "memory_gb": None},
    "steps_measured": 20, "warmup_steps": 3,
    "step_time_s": {"median": 1.0, "p10": 0.9, "p90": 1.1, "mean": 1.0},
    "data_wait_s": {"median": 0.0, "p90": 0.0}, "data_wait_fraction": 0.0,
    "flops_per_step": 1e13, "flops_by_dtype": {"float32": 1e13},
    "op_classes": {
        "matmul": {"flops": {"float32": 1e13}, "bytes": 1e6, "kernels": 10},
        "conv": {"flops": {}, "bytes": 0, "kernels": 0},
        "attention": {"flops": {}, "bytes": 0, "kernels": 0},
        "other": {"flops": {}, "bytes": 0, "kernels": 0},
    },
    "bytes_per_step": 1e6, "kernels_per_step": 10,
    "parameters": 1_000_000, "trainable_parameters": 1_000_000, "batch_size": 64,
    "micro_batches_per_step": 1, "steps_per_epoch": 100,
    "peak_memory_bytes": {"device": 2 * 1024**3, "host": 4 * 1024**3},
    "checkpoint_bytes": 8_000_000,
    "precision": {"param_dtype": "float32", "autocast_dtype": None, "tf32_matmul": False,
                  "tf32_cudnn": True, "grad_scaler": False, "compiled": False, "uses_sdpa": False},
    "dataloader": {"num_workers": 4, "pin_memory": True, "batch_size": 64},
    "data": None,
    "environment": {"python": "3.11.7", "torch": "2.13.0+cu130", "cuda": "13.0",
                    "arch_list": ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"],
                    "platform": "Linux-x86_64"},
    "task": None,
}


def _merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict) and k not in ("flops",):
            _merge(dst[k], v)
        else:
            dst[k] = v


def make_profile(**overrides: Any) -> dict[str, Any]:
    """A valid profile; keyword overrides merge into nested objects (`precision={...}`) and
    `op_classes` entries replace whole classes' fields. Totals are kept consistent."""
    p = copy.deepcopy(BASE)
    _merge(p, overrides)
    classes = p["op_classes"]
    by_dtype: dict[str, float] = {}
    for c in classes.values():
        for d, f in c["flops"].items():
            by_dtype[d] = by_dtype.get(d, 0.0) + f
    p["flops_by_dtype"] = by_dtype
    p["flops_per_step"] = float(sum(by_dtype.values()))
    p["bytes_per_step"] = float(sum(c["bytes"] for c in classes.values()))
    if "kernels_per_step" not in overrides:
        p["kernels_per_step"] = int(sum(c["kernels"] for c in classes.values()))
    st = p["step_time_s"]
    st["p10"], st["p90"] = min(st["p10"], st["median"]), max(st["p90"], st["median"])
    if "data_wait_fraction" not in overrides:
        p["data_wait_fraction"] = min(1.0, p["data_wait_s"]["median"] / st["median"])
    return p


def test_make_profile_is_valid_for_the_profilers_loader() -> None:
    validate_profile(make_profile())
    validate_profile(make_profile(precision={"autocast_dtype": "bfloat16"},
                                  op_classes={"matmul": {"flops": {"bfloat16": 1e12}}}))


def test_make_profile_keeps_totals_consistent() -> None:
    p = make_profile(op_classes={"other": {"flops": {}, "bytes": 5e9, "kernels": 100}})
    assert p["bytes_per_step"] == pytest.approx(5e9 + 1e6)
    assert p["kernels_per_step"] == 110
    assert p["flops_by_dtype"] == {"float32": 1e13}
