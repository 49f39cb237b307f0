"""The WorkloadProfile dict: built from a child's measurements, validated, loaded, written.

The format is docs/PROFILE_SCHEMA.md (schema_version 1). `load_profile(path)` is what other
modules use to read a profile; it raises `InputError` naming the field for a bad file.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from advisor.errors import InputError, nearest
from advisor.output import atomic_write, dumps
from simulator.files import read_json
from simulator.validate import (
    boolean,
    choice,
    known_keys,
    mapping,
    number,
    string,
    string_list,
)

SCHEMA_VERSION = 1
MODES = ("torch", "command")
DEVICE_KINDS = ("cpu", "cuda", "mps")
OP_CLASSES = ("matmul", "conv", "attention", "other")
FLOPS_CONVENTION = ("torch.utils.flop_counter: matmul, convolution and attention kernels "
                    "(2 FLOPs per multiply-add); element-wise ops are counted in bytes only")

# Plausible upper bounds: past them a value is a unit mistake or a corrupt file, and would reach a
# submit file as an absurd request (a checkpoint of 1e30 bytes gave request_disk = 2.56e24 MB).
MAX_DEVICE_BYTES = 1e13       # 10 TB of GPU memory for one process
MAX_HOST_BYTES = 1e14         # 100 TB of host memory
MAX_CHECKPOINT_BYTES = 1e14   # 100 TB written per checkpoint
MAX_DATA_BYTES = 1e15         # 1 PB read by one task
MAX_STEP_SECONDS = 1e6        # eleven days per optimizer step
MAX_FLOPS = 1e24              # per step; a 1e12-parameter model on a 1e6-token batch is ~6e18
MAX_COUNT = 1e15              # parameters, kernels, files, steps

# (dotted key, kind, when it may be null, number rules). Kinds: int, num, str, strlist, dict.
# Null: "never", "command" (null in command mode), "always". Numbers are zero or more unless the
# rules say otherwise (exclusive_minimum=0: zero means nothing).
Field = tuple[str, str, str, dict[str, Any]]
CORE_FIELDS: list[Field] = [  # every profile has these
    ("schema_version", "int", "never", {}),
    ("script", "str", "never", {}),
    ("device", "dict", "never", {}),
    ("device.kind", "str", "never", {}),
    ("device.name", "str", "always", {}),
    ("steps_measured", "int", "never", {"maximum": MAX_COUNT}),
    ("step_time_s", "dict", "never", {}),
    ("step_time_s.median", "num", "never", {"maximum": MAX_STEP_SECONDS}),
    ("step_time_s.p10", "num", "never", {"maximum": MAX_STEP_SECONDS}),
    ("step_time_s.p90", "num", "never", {"maximum": MAX_STEP_SECONDS}),
    ("data_wait_fraction", "num", "command", {"maximum": 1.0}),
    ("flops_per_step", "num", "command", {"maximum": MAX_FLOPS}),
    ("parameters", "int", "command", {"maximum": MAX_COUNT}),
    ("batch_size", "int", "always", {"exclusive_minimum": 0, "maximum": MAX_COUNT}),
    ("peak_memory_bytes", "dict", "never", {}),
    ("peak_memory_bytes.device", "int", "command", {"maximum": MAX_DEVICE_BYTES}),
    ("peak_memory_bytes.host", "int", "never", {"maximum": MAX_HOST_BYTES}),
    ("checkpoint_bytes", "int", "always", {"maximum": MAX_CHECKPOINT_BYTES}),
    ("environment", "dict", "never", {}),
    ("environment.python", "str", "never", {}),
    ("environment.torch", "str", "always", {}),
]
OPTIONAL_FIELDS: list[Field] = [  # checked where present (older profiles may lack them)
    ("mode", "str", "always", {}),
    ("args", "strlist", "always", {}),
    ("steps_per_epoch", "int", "always", {"exclusive_minimum": 0, "maximum": MAX_COUNT}),
    ("micro_batches_per_step", "int", "always", {"exclusive_minimum": 0, "maximum": MAX_COUNT}),
    ("warmup_steps", "int", "always", {"maximum": MAX_COUNT}),
    ("data", "dict", "always", {}),
    ("data.path", "str", "always", {}),
    ("data.bytes", "int", "always", {"maximum": MAX_DATA_BYTES}),
    ("data.files", "int", "always", {"maximum": MAX_COUNT}),
    ("data_wait_s", "dict", "always", {}),
    ("data_wait_s.median", "num", "always", {"maximum": MAX_STEP_SECONDS}),
    ("flops_by_dtype", "dict", "always", {}),
    ("bytes_per_step", "num", "always", {"maximum": MAX_FLOPS}),
    ("kernels_per_step", "num", "always", {"maximum": MAX_COUNT}),
    ("op_classes", "dict", "always", {}),
    ("precision", "dict", "always", {}),
    ("dataloader", "dict", "always", {}),
    ("dataloader.num_workers", "int", "always", {"maximum": 4096}),
    ("device.capability", "num", "always", {"maximum": 20}),
    ("environment.arch_list", "strlist", "always", {}),
    ("task", "dict", "always", {}),
    ("training_loop", "dict", "always", {}),
    ("batch_layout", "dict", "always", {}),
    ("input_pipeline", "dict", "always", {}),
    ("input_pipeline.cpu_s_per_step", "num", "always", {"maximum": MAX_STEP_SECONDS}),
    ("contention", "dict", "always", {}),
]
PRECISION_DTYPES = ("param_dtype", "autocast_dtype", "float32_matmul_precision")
PRECISION_FLAGS = ("tf32_matmul", "tf32_cudnn", "compiled", "uses_sdpa", "grad_scaler")
_FIX = "re-create it with `advisor profile SCRIPT` (docs/PROFILE_SCHEMA.md lists the fields)"


def _get(d: dict, dotted: str) -> tuple[bool, Any]:
    cur: Any = d
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return False, None
        cur = cur[part]
    return True, cur


def _check(profile: dict[str, Any], field: Field, mode: str, required: bool) -> None:
    key, kind, nullable, rules = field
    present, value = _get(profile, key)
    parent = key.rsplit(".", 1)[0] if "." in key else None
    if not present:
        if not required or (parent is not None and not isinstance(_get(profile, parent)[1], dict)):
            return
        options = list(_get(profile, parent)[1] or {}) if parent else list(profile)
        raise InputError(key, None, "is missing.", _FIX,
                         suggestions=nearest(key.rsplit(".", 1)[-1], options))
    if value is None:
        if nullable == "always" or (nullable == "command" and mode == "command"):
            return
        raise InputError(key, value, "must not be null.", _FIX)
    if kind in ("int", "num"):
        bounds = rules if "exclusive_minimum" in rules else {"minimum": 0, **rules}
        checked = number(value, key, integer=kind == "int", **bounds)
        if isinstance(value, str):  # numeric text ("1e3"): keep the number
            _put(profile, key, checked)
    elif kind == "str":
        string(value, key)
    elif kind == "strlist":
        string_list(value, key)
    elif kind == "dict":
        mapping(value, key, "a JSON object {...}")


def _put(d: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        d = d[part]
    d[last] = value


def _flops(value: Any, field: str) -> None:
    for dtype, flops in mapping(value, field, '{"float32": 1.2e10}').items():
        number(flops, f"{field}.{dtype}", minimum=0, maximum=MAX_FLOPS)


def _details(profile: dict[str, Any]) -> None:
    """The nested objects prediction reads: op classes, FLOPs by dtype, precision settings."""
    if profile.get("flops_by_dtype") is not None:
        _flops(profile["flops_by_dtype"], "flops_by_dtype")
    classes = profile.get("op_classes")
    if classes is not None:
        known_keys(classes, OP_CLASSES, "op_classes")
        for name, c in classes.items():
            where = f"op_classes.{name}"
            if c is None:
                continue
            mapping(c, where, '{"flops": {}, "bytes": 0, "kernels": 0}')
            if c.get("flops") is not None:
                _flops(c["flops"], f"{where}.flops")
            number(c.get("bytes"), f"{where}.bytes", default=None, minimum=0, maximum=MAX_FLOPS)
            number(c.get("kernels"), f"{where}.kernels", default=None, minimum=0,
                   maximum=MAX_COUNT)
    precision = mapping(profile.get("precision") or {}, "precision", '{"param_dtype": "float32"}')
    for key in PRECISION_DTYPES:
        string(precision.get(key), f"precision.{key}", default=None)
    for key in PRECISION_FLAGS:
        boolean(precision.get(key), f"precision.{key}", default=None)


def _prediction_inputs(profile: dict[str, Any]) -> None:
    """What prediction needs beyond a valid profile: per-step work to scale."""
    if (profile.get("op_classes") is None and not profile.get("flops_by_dtype")
            and profile.get("flops_per_step") is None):
        raise InputError("op_classes", None, "is missing, and so is flops_per_step: nothing to "
                         "predict from.", "profile the training loop with `advisor profile "
                         "SCRIPT` (mode torch).")


def validate_profile(profile: Any, source: str | None = None, *,
                     for_prediction: bool = False) -> dict[str, Any]:
    """The one check of a WorkloadProfile, for the profiler that writes it and every reader;
    returns it. Raises InputError naming the field. `for_prediction` also requires what `advisor
    fit` scales (per-step FLOPs, a step time above zero, the device peak)."""
    try:
        return _validate(profile, for_prediction)
    except InputError as exc:
        raise exc.with_source(source) if source else exc from None


def _validate(profile: Any, for_prediction: bool) -> dict[str, Any]:
    if not isinstance(profile, dict):
        raise InputError("profile", type(profile).__name__, "a profile is a JSON object.", _FIX)
    version = profile.get("schema_version")
    if "schema_version" in profile and version != SCHEMA_VERSION:
        raise InputError("schema_version", version,
                         f"this advisor reads schema_version {SCHEMA_VERSION}.", _FIX)
    mode = choice(profile.get("mode"), "mode", MODES, default="torch")
    if mode == "torch" or for_prediction:
        _prediction_inputs(profile)
    for f in CORE_FIELDS:
        _check(profile, f, mode, required=True)
    _details(profile)  # before the totals derived from these (bytes_per_step, ...)
    for f in OPTIONAL_FIELDS:
        _check(profile, f, mode, required=False)
    choice(profile["device"]["kind"], "device.kind", DEVICE_KINDS)
    st = profile["step_time_s"]
    if not st["p10"] <= st["median"] <= st["p90"]:
        raise InputError("step_time_s", st, "needs p10 <= median <= p90.", _FIX)
    if for_prediction:
        if st["median"] <= 0:
            raise InputError("step_time_s.median", st["median"], "must be greater than zero.",
                             "give a measured step time.")
        if profile["peak_memory_bytes"].get("device") is None:
            raise InputError("peak_memory_bytes.device", None, "is missing.", _FIX)
    return profile


def load_profile(path: str | Path, *, for_prediction: bool = False) -> dict[str, Any]:
    """Read and validate a WorkloadProfile JSON file."""
    src = str(path)
    data = read_json(path, "profile", "give the path of a file written by `advisor profile`")
    return validate_profile(data, source=src, for_prediction=for_prediction)


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
    elif results.get("batches_per_epoch_from_data"):  # batches sliced from an in-memory tensor
        steps_per_epoch = max(1, int(results["batches_per_epoch_from_data"]) // max(micro, 1))
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
                            "host": int(results.get("host_bytes") or
                                        max(host_peak_rss, results.get("max_rss_bytes", 0))),
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
        **(results.get("extra") or {}),  # training_loop, batch_layout, input_pipeline, contention
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
