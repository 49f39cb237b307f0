"""Reading a WorkloadProfile for prediction: the fields `advisor fit` needs, validated.

`load_profile_file(path)` reads the JSON and `ProfileView.from_dict(d)` turns a profile dict
into the typed view the predictor uses. Both check the profile with the one profile validator,
`advisor.profiler.schema.validate_profile` (the profiler writes with it, every reader reads
with it): a bad value raises `InputError` naming the field (`op_classes.matmul.bytes`,
`step_time_s.median`, ...), the value and the fix. See docs/PROFILE_SCHEMA.md for the format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advisor.profiler.schema import OP_CLASSES, load_profile, validate_profile

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
    input_cpu_s: float | None = None       # measured loader CPU-seconds per step (input_pipeline)
    disturbed: str | None = None           # why the measurement was disturbed (contention)

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


def _num(d: Mapping[str, Any] | None, key: str, default: float = 0.0) -> float:
    """A number the profile validator has checked (absent or null: `default`)."""
    v = (d or {}).get(key)
    return default if v is None else float(v)


def _class(raw: Any) -> OpClass:
    raw = raw or {}
    flops = {str(k).removeprefix("torch."): float(x) for k, x in (raw.get("flops") or {}).items()}
    return OpClass(flops, _num(raw, "bytes"), int(_num(raw, "kernels")))


def _parse(d: Mapping[str, Any], source: str | None) -> ProfileView:
    """The typed view of a profile; the values were checked by `validate_profile` (the one
    profile validator), this fills in the documented defaults where a field is absent."""
    if not isinstance(d, dict):
        d = dict(d) if isinstance(d, Mapping) else d
    validate_profile(d, source, for_prediction=True)
    defaults: list[str] = []
    device = d["device"]
    step_median = float(d["step_time_s"]["median"])

    if d.get("data_wait_s") is not None:
        data_wait = _num(d["data_wait_s"], "median")
    else:
        frac = d.get("data_wait_fraction")
        data_wait = float(frac or 0.0) * step_median
        defaults.append("data_wait_s from data_wait_fraction × step time" if frac is not None
                        else "no data-wait measurement: input time assumed 0")

    raw_classes = d.get("op_classes")
    if raw_classes is not None:
        classes = {c: _class(raw_classes.get(c)) for c in OP_CLASSES}
    else:
        by_dtype = {str(k).removeprefix("torch."): float(x)
                    for k, x in (d.get("flops_by_dtype") or {}).items()}
        if not by_dtype:
            by_dtype = {"float32": _num(d, "flops_per_step")}
        classes = {"matmul": OpClass(by_dtype, 0.0, 0), "conv": OpClass({}, 0.0, 0),
                   "attention": OpClass({}, 0.0, 0),
                   "other": OpClass({}, _num(d, "bytes_per_step"), int(_num(d, "kernels_per_step")))}
        defaults.append("no op_classes: all FLOPs treated as matmul, all bytes as element-wise")
    kernels = d.get("kernels_per_step")
    kernels_per_step = int(kernels) if kernels is not None else sum(c.kernels for c in classes.values())

    bs = d.get("batch_size")
    prec = d.get("precision") or {}
    if not prec:
        defaults.append("no precision block: float32 parameters, PyTorch's TF32 defaults")
    loader = d.get("dataloader") or {}
    env = d.get("environment") or {}

    def _dtype(key: str) -> str | None:
        v = prec.get(key)
        return None if v is None else str(v).removeprefix("torch.")

    def _flag(key: str, default: bool) -> bool:
        v = prec.get(key)
        return default if v is None else bool(v)

    autocast_dtype = _dtype("autocast_dtype")
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

    capability = device.get("capability")
    return ProfileView(
        device_kind=str(device["kind"]),
        device_name=device.get("name"),
        device_capability=None if capability is None else float(capability),
        step_time_s=step_median,
        data_wait_s=min(data_wait, step_median),
        op_classes=classes,
        kernels_per_step=kernels_per_step,
        peak_device_bytes=float(d["peak_memory_bytes"]["device"]),
        parameters=int(_num(d, "parameters")),
        batch_size=None if bs is None else int(bs),
        num_workers=int(loader.get("num_workers") or 0),
        param_dtype=_dtype("param_dtype") or "float32",
        autocast_dtype=autocast_dtype,
        tf32_matmul=tf32_matmul,
        tf32_cudnn=_flag("tf32_cudnn", True),
        compiled=_flag("compiled", False),
        uses_sdpa=_flag("uses_sdpa", False) or classes["attention"].kernels > 0,
        torch_version=env.get("torch"),
        cuda_version=str(env["cuda"]) if env.get("cuda") not in (None, "") else None,
        arch_list=tuple(env.get("arch_list") or ()),
        script=d.get("script"),
        defaults_used=tuple(defaults),
        input_cpu_s=_num(d.get("input_pipeline"), "cpu_s_per_step", -1.0)
        if _num(d.get("input_pipeline"), "cpu_s_per_step", -1.0) >= 0 else None,
        disturbed=(str((d.get("contention") or {}).get("reason") or "the machine was busy")
                   if isinstance(d.get("contention"), Mapping)
                   and d["contention"].get("disturbed") else None),
    )


def load_profile_file(path: str | Path) -> dict[str, Any]:
    """Read a profile and check it has what prediction needs (one validator for both)."""
    return load_profile(path, for_prediction=True)
