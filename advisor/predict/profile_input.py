"""Reading a WorkloadProfile for prediction: the fields `advisor fit` needs, validated.

`load_profile_file(path)` reads the JSON (through `advisor.profiler.schema.load_profile` when
that module exists, else with the small validator here) and `ProfileView.from_dict(d)` turns a
profile dict into the typed view the predictor uses. Every bad value raises `InputError`
naming the field (`op_classes.matmul.bytes`, `step_time_s.median`, ...), the value and the fix.
See docs/PROFILE_SCHEMA.md for the format.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advisor.errors import InputError

OP_CLASSES = ("matmul", "conv", "attention", "other")
SUPPORTED_SCHEMA_VERSIONS = (1,)
HALF_DTYPES = ("float16", "bfloat16")


@dataclass(frozen=True)
class OpClass:
    """One kind of kernel per optimizer step: FLOPs by dtype, bytes moved, kernel count."""

    flops: Mapping[str, float]
    bytes: float
    kernels: int

    @property
    def total_flops(self) -> float:
        return float(sum(self.flops.values()))


@dataclass(frozen=True)
class ProfileView:
    """What prediction reads from a profile; missing optional fields get stated defaults."""

    device_kind: str                       # cpu | cuda | mps
    device_name: str | None
    device_capability: float | None
    step_time_s: float                     # median, seconds per optimizer step
    data_wait_s: float                     # median seconds per step waiting on the input pipeline
    op_classes: Mapping[str, OpClass]
    kernels_per_step: int
    peak_device_bytes: float
    parameters: int
    batch_size: int | None
    num_workers: int
    param_dtype: str = "float32"
    autocast_dtype: str | None = None
    tf32_matmul: bool = False
    tf32_cudnn: bool = True
    compiled: bool = False
    uses_sdpa: bool = False
    torch_version: str | None = None
    cuda_version: str | None = None
    arch_list: tuple[str, ...] = ()
    script: str | None = None
    defaults_used: tuple[str, ...] = field(default_factory=tuple)

    @property
    def measured_on_gpu(self) -> bool:
        return self.device_kind == "cuda"

    def dtypes_used(self) -> set[str]:
        out = {d for c in self.op_classes.values() for d, f in c.flops.items() if f > 0}
        out.add(self.param_dtype)
        if self.autocast_dtype:
            out.add(self.autocast_dtype)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str | None = None) -> ProfileView:
        return _parse(d, source)


def _err(fld: str, value: Any, problem: str, fix: str, source: str | None) -> InputError:
    return InputError(fld, value, problem, fix, source=source)


def _mapping(d: Mapping[str, Any], key: str, source: str | None, *, required: bool = True,
             prefix: str = "") -> Mapping[str, Any] | None:
    name = f"{prefix}{key}"
    if key not in d or d[key] is None:
        if required:
            raise _err(name, None, "is missing.", f"profile again with `advisor profile`, or add {name}.",
                       source)
        return None
    v = d[key]
    if not isinstance(v, Mapping):
        raise _err(name, v, "must be an object.", f"write {name} as a JSON object (see docs/PROFILE_SCHEMA.md).",
                   source)
    return v


def _number(d: Mapping[str, Any], key: str, source: str | None, *, prefix: str = "",
            required: bool = True, default: float | None = None, positive: bool = False) -> float | None:
    name = f"{prefix}{key}"
    if key not in d or d[key] is None:
        if required:
            raise _err(name, None, "is missing.", f"add {name} (a number; see docs/PROFILE_SCHEMA.md).", source)
        return default
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _err(name, v, "must be a finite number.", f"write {name} as a plain number.", source)
    if v < 0 or (positive and v == 0):
        raise _err(name, v, "must be " + ("> 0." if positive else ">= 0."), f"give a measured {name}.", source)
    return float(v)


def _flops_map(v: Any, name: str, source: str | None) -> dict[str, float]:
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise _err(name, v, "must map dtype names to FLOPs.", 'write e.g. {"float32": 1.2e10}.', source)
    out: dict[str, float] = {}
    for k, x in v.items():
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x < 0:
            raise _err(f"{name}.{k}", x, "must be a FLOP count >= 0.", "write a plain number.", source)
        out[str(k).removeprefix("torch.")] = float(x)
    return out


def _parse(d: Mapping[str, Any], source: str | None) -> ProfileView:
    if not isinstance(d, Mapping):
        raise _err("profile", type(d).__name__, "must be a JSON object.", "give a file written by `advisor profile`.",
                   source)
    defaults: list[str] = []
    version = d.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise _err("schema_version", version, f"is not a supported version ({SUPPORTED_SCHEMA_VERSIONS}).",
                   "profile the script again with this version of `advisor profile`.", source)
    device = _mapping(d, "device", source)
    assert device is not None
    kind = device.get("kind")
    if kind not in ("cpu", "cuda", "mps"):
        raise _err("device.kind", kind, "must be cpu, cuda or mps.", "use the value `advisor profile` wrote.",
                   source)
    step = _mapping(d, "step_time_s", source)
    assert step is not None
    step_median = _number(step, "median", source, prefix="step_time_s.", positive=True)
    assert step_median is not None

    wait = _mapping(d, "data_wait_s", source, required=False)
    if wait is not None:
        data_wait = _number(wait, "median", source, prefix="data_wait_s.")
    else:
        frac = _number(d, "data_wait_fraction", source, required=False, default=None)
        if frac is not None and frac > 1:
            raise _err("data_wait_fraction", frac, "must be between 0 and 1.", "give wait / step time.", source)
        data_wait = (frac or 0.0) * step_median
        defaults.append("data_wait_s from data_wait_fraction × step time" if frac is not None
                        else "no data-wait measurement: input time assumed 0")
    assert data_wait is not None

    classes: dict[str, OpClass] = {}
    raw_classes = _mapping(d, "op_classes", source, required=False)
    if raw_classes is not None:
        unknown = [k for k in raw_classes if k not in OP_CLASSES]
        if unknown:
            raise InputError(f"op_classes.{unknown[0]}", unknown[0], "is not a known op class.",
                             f"use {', '.join(OP_CLASSES)}.", source=source)
        for c in OP_CLASSES:
            raw = _mapping(raw_classes, c, source, required=False, prefix="op_classes.")
            if raw is None:
                classes[c] = OpClass({}, 0.0, 0)
                continue
            p = f"op_classes.{c}."
            classes[c] = OpClass(
                flops=_flops_map(raw.get("flops"), p + "flops", source),
                bytes=_number(raw, "bytes", source, prefix=p, required=False, default=0.0) or 0.0,
                kernels=int(_number(raw, "kernels", source, prefix=p, required=False, default=0.0) or 0),
            )
    else:
        by_dtype = _flops_map(d.get("flops_by_dtype"), "flops_by_dtype", source)
        total = _number(d, "flops_per_step", source, required=False, default=None)
        if not by_dtype and total is None:
            raise _err("op_classes", None, "is missing, and so is flops_per_step: nothing to predict from.",
                       "profile the training loop with `advisor profile SCRIPT` (mode torch).", source)
        if not by_dtype:
            by_dtype = {"float32": float(total or 0.0)}
        bytes_total = _number(d, "bytes_per_step", source, required=False, default=0.0) or 0.0
        kern = int(_number(d, "kernels_per_step", source, required=False, default=0.0) or 0)
        classes = {"matmul": OpClass(by_dtype, 0.0, 0), "conv": OpClass({}, 0.0, 0),
                   "attention": OpClass({}, 0.0, 0), "other": OpClass({}, bytes_total, kern)}
        defaults.append("no op_classes: all FLOPs treated as matmul, all bytes as element-wise")

    kernels = _number(d, "kernels_per_step", source, required=False, default=None)
    kernels_per_step = int(kernels) if kernels is not None else sum(c.kernels for c in classes.values())

    peak = _mapping(d, "peak_memory_bytes", source)
    assert peak is not None
    peak_device = _number(peak, "device", source, prefix="peak_memory_bytes.")
    assert peak_device is not None

    params = int(_number(d, "parameters", source, required=False, default=0.0) or 0)
    bs_raw = d.get("batch_size")
    batch_size = int(bs_raw) if isinstance(bs_raw, (int, float)) and not isinstance(bs_raw, bool) else None

    prec = _mapping(d, "precision", source, required=False) or {}
    if not prec:
        defaults.append("no precision block: float32 parameters, PyTorch's TF32 defaults")
    loader = _mapping(d, "dataloader", source, required=False) or {}
    workers = loader.get("num_workers", 0)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise _err("dataloader.num_workers", workers, "must be a whole number >= 0.",
                   "write the DataLoader's num_workers.", source)
    env = _mapping(d, "environment", source, required=False) or {}
    arch = env.get("arch_list") or []
    if not isinstance(arch, (list, tuple)) or not all(isinstance(a, str) for a in arch):
        raise _err("environment.arch_list", arch, "must be a list of strings such as \"sm_80\".",
                   "write torch.cuda.get_arch_list() of the build.", source)

    def _dtype(key: str, default: str | None) -> str | None:
        v = prec.get(key, default)
        if v is None:
            return None
        if not isinstance(v, str):
            raise _err(f"precision.{key}", v, "must be a dtype name such as float16.", "write it as a string.",
                       source)
        return v.removeprefix("torch.")

    def _flag(key: str, default: bool) -> bool:
        v = prec.get(key, default)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise _err(f"precision.{key}", v, "must be true or false.", "write a JSON boolean.", source)
        return v

    autocast_dtype = _dtype("autocast_dtype", None)
    per_device = prec.get("autocast")
    if autocast_dtype is None and isinstance(per_device, Mapping):
        # {"cuda": "float16"}: autocast entered for a device (the GPU one first)
        for dev in ("cuda", *per_device):
            v = per_device.get(dev)
            if isinstance(v, str) and v:
                autocast_dtype = v.removeprefix("torch.")
                break
    tf32_matmul = _flag("tf32_matmul", False)
    if prec.get("float32_matmul_precision") in ("high", "medium"):
        tf32_matmul = True   # torch.set_float32_matmul_precision("high") enables TF32 matmuls

    return ProfileView(
        device_kind=str(kind),
        device_name=device.get("name") if isinstance(device.get("name"), str) else None,
        device_capability=(float(device["capability"]) if isinstance(device.get("capability"), (int, float))
                           and not isinstance(device.get("capability"), bool) else None),
        step_time_s=step_median,
        data_wait_s=min(data_wait, step_median),
        op_classes=classes,
        kernels_per_step=kernels_per_step,
        peak_device_bytes=peak_device,
        parameters=params,
        batch_size=batch_size,
        num_workers=workers,
        param_dtype=_dtype("param_dtype", "float32") or "float32",
        autocast_dtype=autocast_dtype,
        tf32_matmul=tf32_matmul,
        tf32_cudnn=_flag("tf32_cudnn", True),
        compiled=_flag("compiled", False),
        uses_sdpa=_flag("uses_sdpa", False) or classes["attention"].kernels > 0,
        torch_version=env.get("torch") if isinstance(env.get("torch"), str) else None,
        cuda_version=str(env["cuda"]) if env.get("cuda") not in (None, "") else None,
        arch_list=tuple(arch),
        script=d.get("script") if isinstance(d.get("script"), str) else None,
        defaults_used=tuple(defaults),
    )


def load_profile_file(path: str | Path) -> dict[str, Any]:
    """Read a profile with the profiler's validating loader, then check what prediction needs."""
    from advisor.profiler.schema import load_profile

    p = Path(path)
    data = load_profile(p)
    ProfileView.from_dict(data, source=str(p))  # validates what prediction reads
    return dict(data)
