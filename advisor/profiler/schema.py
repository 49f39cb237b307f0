"""The WorkloadProfile dict: built from a child's measurements, validated, loaded, written.

The format is docs/PROFILE_SCHEMA.md (schema_version 1). `load_profile(path)` is what other
modules use to read a profile; it raises `InputError` naming the field for a bad file.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from advisor.errors import InputError, nearest
from advisor.output import atomic_write, dumps

SCHEMA_VERSION = 1
MODES = ("torch", "command")
DEVICE_KINDS = ("cpu", "cuda", "mps")
OP_CLASSES = ("matmul", "conv", "attention", "other")
FLOPS_CONVENTION = ("torch.utils.flop_counter: matmul, convolution and attention kernels "
                    "(2 FLOPs per multiply-add); element-wise ops are counted in bytes only")

# (dotted key, kind, when it may be null: "never", "command" (in command mode), "always").
CORE_FIELDS: list[tuple[str, str, str]] = [
    ("schema_version", "int", "never"),
    ("script", "str", "never"),
    ("device", "dict", "never"),
    ("device.kind", "str", "never"),
    ("device.name", "str", "always"),
    ("steps_measured", "int", "never"),
    ("step_time_s", "dict", "never"),
    ("step_time_s.median", "num", "never"),
    ("step_time_s.p10", "num", "never"),
    ("step_time_s.p90", "num", "never"),
    ("data_wait_fraction", "num", "command"),
    ("flops_per_step", "num", "command"),
    ("parameters", "int", "command"),
    ("batch_size", "int", "always"),
    ("peak_memory_bytes", "dict", "never"),
    ("peak_memory_bytes.device", "int", "command"),
    ("peak_memory_bytes.host", "int", "never"),
    ("checkpoint_bytes", "int", "always"),
    ("environment", "dict", "never"),
    ("environment.python", "str", "never"),
    ("environment.torch", "str", "always"),
]


def _get(d: dict, dotted: str) -> tuple[bool, Any]:
    cur: Any = d
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return False, None
        cur = cur[part]
    return True, cur


def validate_profile(profile: Any, source: str | None = None) -> dict[str, Any]:
    """Check the stable core of a profile; return it. Raises InputError naming the field."""
    fix = "re-create it with `advisor profile SCRIPT` (docs/PROFILE_SCHEMA.md lists the fields)"
    if not isinstance(profile, dict):
        raise InputError("profile", type(profile).__name__, "a profile is a JSON object.", fix,
                         source=source)
    version = profile.get("schema_version")
    if "schema_version" in profile and version != SCHEMA_VERSION:
        raise InputError("schema_version", version,
                         f"this advisor reads schema_version {SCHEMA_VERSION}.", fix,
                         source=source)
    mode = profile.get("mode", "torch")
    if mode not in MODES:
        raise InputError("mode", mode, f"must be one of {', '.join(MODES)}.", fix,
                         source=source, suggestions=nearest(str(mode), MODES))
    for key, kind, nullable in CORE_FIELDS:
        present, value = _get(profile, key)
        if not present:
            parent = key.rsplit(".", 1)[0] if "." in key else None
            options = list(_get(profile, parent)[1] or {}) if parent else list(profile)
            raise InputError(key, None, "is missing.", fix, source=source,
                             suggestions=nearest(key.rsplit(".", 1)[-1], options))
        if value is None:
            if nullable == "always" or (nullable == "command" and mode == "command"):
                continue
            raise InputError(key, value, "must not be null.", fix, source=source)
        if kind in ("int", "num"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(key, value, "must be a number.", fix, source=source)
            if kind == "int" and isinstance(value, float) and not value.is_integer():
                raise InputError(key, value, "must be a whole number.", fix, source=source)
            if value < 0:
                raise InputError(key, value, "must not be negative.", fix, source=source)
        elif kind == "str" and not isinstance(value, str):
            raise InputError(key, value, "must be a string.", fix, source=source)
        elif kind == "dict" and not isinstance(value, dict):
            raise InputError(key, value, "must be an object.", fix, source=source)
    kind = profile["device"]["kind"]
    if kind not in DEVICE_KINDS:
        raise InputError("device.kind", kind, f"must be one of {', '.join(DEVICE_KINDS)}.", fix,
                         source=source, suggestions=nearest(str(kind), DEVICE_KINDS))
    st = profile["step_time_s"]
    if not st["p10"] <= st["median"] <= st["p90"]:
        raise InputError("step_time_s", st, "needs p10 <= median <= p90.", fix, source=source)
    frac = profile.get("data_wait_fraction")
    if frac is not None and frac > 1:
        raise InputError("data_wait_fraction", frac, "is a fraction between 0 and 1.", fix,
                         source=source)
    return profile


def load_profile(path: str | Path) -> dict[str, Any]:
    """Read and validate a WorkloadProfile JSON file."""
    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise InputError("profile", src, "no such file.",
                         "give the path of a file written by `advisor profile`", source=src)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError("profile", src, f"is not valid JSON ({exc}).",
                         "re-create it with `advisor profile SCRIPT`", source=src) from None
    return validate_profile(data, source=src)


def write_profile(profile: dict[str, Any], path: str | Path) -> Path:
    validate_profile(profile)
    return atomic_write(path, dumps(profile) + "\n")


# -- building ------------------------------------------------------------------------------------
def _stats(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    return {"median": float(np.median(arr)), "p10": float(np.percentile(arr, 10)),
            "p90": float(np.percentile(arr, 90)), "mean": float(arr.mean())}


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _main_loader(loaders: list[dict[str, Any]]) -> dict[str, Any] | None:
    return max(loaders, key=lambda d: d.get("fetches", 0)) if loaders else None


def build_torch_profile(results: dict[str, Any], *, script: str, args: list[str],
                        warmup: int, host_peak_rss: int, data: dict | None) -> dict[str, Any]:
    """A torch-mode profile from the child's results (they must hold measured intervals)."""
    intervals = results["intervals_s"]
    waits = results.get("data_wait_s") or [0.0] * len(intervals)
    step = _stats(intervals)
    wait = _stats(waits)
    fraction = min(1.0, wait["median"] / step["median"]) if step["median"] > 0 else 0.0
    backward = [b for b in results.get("backward_calls", []) if b > 0]
    fetches = [f for f in results.get("fetches", []) if f > 0]
    micro = int(np.median(backward)) if backward else int(np.median(fetches)) if fetches else 1
    loader = _main_loader(results.get("loaders", []))
    batch = loader.get("batch_size") if loader else None
    if batch is None:
        batch = results.get("module_input_batch")
    steps_per_epoch = None
    if loader and loader.get("length"):
        steps_per_epoch = max(1, int(loader["length"]) // max(micro, 1))
    counted = results.get("counted") or {}
    device = results["device"]
    if device["kind"] == "cuda":
        dev_peak = int(max(counted.get("cuda_peak_allocated", 0),
                           results.get("cuda_peak_allocated", 0)))
    else:
        dev_peak = int(counted.get("peak_live_bytes", 0))
    static = {"parameters": int(results.get("parameter_bytes", 0)),
              "gradients": int(results.get("gradient_bytes", 0)),
              "optimizer_state": int(results.get("optimizer_state_bytes", 0))}
    static["activations"] = max(0, dev_peak - sum(static.values()))
    peak: dict[str, Any] = {"device": dev_peak,
                            "host": int(max(host_peak_rss, results.get("max_rss_bytes", 0))),
                            "breakdown": static,
                            "device_method": ("torch.cuda.max_memory_allocated"
                                              if device["kind"] == "cuda" else
                                              "peak live tensor bytes on the counted step")}
    if results.get("cuda_context_bytes"):
        peak["cuda_context_bytes"] = int(results["cuda_context_bytes"])
        peak["device_with_context"] = dev_peak + int(results["cuda_context_bytes"])
    precision = dict(results.get("precision") or {})
    precision.update({"param_dtype": results.get("param_dtype"),
                      "compiled": bool(results.get("compiled", False)),
                      "uses_sdpa": bool(counted.get("uses_sdpa", False))})
    classes = counted.get("op_classes") or {c: {"flops": {}, "bytes": 0, "kernels": 0}
                                            for c in OP_CLASSES}
    return {
        "schema_version": SCHEMA_VERSION,
        "mode": "torch",
        "script": script,
        "args": list(args),
        "created": _now(),
        "device": device,
        "steps_measured": len(intervals),
        "warmup_steps": int(warmup),
        "warmup_steps_run": results.get("warmup_steps_run"),
        "flops_counted_on_step": results.get("flops_counted_on_step"),
        "step_time_s": step,
        "data_wait_s": {"median": wait["median"], "p90": wait["p90"]},
        "data_wait_fraction": fraction,
        "flops_per_step": float(counted.get("flops_per_step", 0.0)),
        "flops_by_dtype": counted.get("flops_by_dtype", {}),
        "flops_convention": FLOPS_CONVENTION,
        "op_classes": classes,
        "bytes_per_step": float(counted.get("bytes_per_step", 0)),
        "kernels_per_step": int(counted.get("kernels_per_step", 0)),
        "parameters": int(results.get("parameters", 0)),
        "trainable_parameters": int(results.get("trainable_parameters", 0)),
        "batch_size": int(batch) if batch is not None else None,
        "micro_batches_per_step": micro,
        "steps_per_epoch": steps_per_epoch,
        "batches_per_epoch": loader.get("length") if loader else None,
        "peak_memory_bytes": peak,
        "checkpoint_bytes": results.get("checkpoint_bytes"),
        "precision": precision,
        "dataloader": ({"num_workers": loader["num_workers"], "pin_memory": loader["pin_memory"],
                        "batch_size": loader.get("batch_size")} if loader else None),
        "data": data,
        "models": results.get("models", []),
        "optimizers": results.get("optimizers", []),
        "environment": results["environment"],
        "task": None,
    }


def build_command_profile(results: dict[str, Any], *, command: str, host_peak_rss: int,
                          gpu_memory_bytes: int | None, environment: dict[str, Any]
                          ) -> dict[str, Any]:
    task = dict(results["task"])
    task["peak_rss_bytes"] = int(max(task.get("peak_rss_bytes") or 0, host_peak_rss))
    task["gpu_memory_bytes"] = gpu_memory_bytes
    wall = float(task["wall_s"])
    return {
        "schema_version": SCHEMA_VERSION,
        "mode": "command",
        "script": command,
        "args": [],
        "created": _now(),
        "device": {"kind": "cuda" if gpu_memory_bytes else "cpu",
                   "name": results.get("cpu_name"), "capability": None, "memory_gb": None},
        "steps_measured": 1,
        "warmup_steps": 0,
        "step_time_s": {"median": wall, "p10": wall, "p90": wall, "mean": wall},
        "data_wait_s": None,
        "data_wait_fraction": None,
        "flops_per_step": None,
        "parameters": None,
        "batch_size": None,
        "peak_memory_bytes": {"device": gpu_memory_bytes, "host": task["peak_rss_bytes"]},
        "checkpoint_bytes": None,
        "data": None,
        "environment": environment,
        "task": task,
    }
