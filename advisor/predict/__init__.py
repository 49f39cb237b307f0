"""Predicting a profiled workload on other GPUs: does it fit, how fast is a step, what limits it.

`predict_gpu(profile, gpu)` answers for one GPU model (used by `fit`, `assess`, `recommend`);
`predict_fit(profile, pool, catalog)` answers for every GPU type of a pool, with counts, sorted
by predicted step time. The parts, one concept per module:

* `profile_input` — the profile fields prediction reads, validated;
* `roofline` — per-op-class time model and its documented efficiencies;
* `calibrate` — efficiencies calibrated on the GPU a profile was measured on;
* `input_pipeline` — the data loader as a floor on step time, CPUs to keep a GPU fed;
* `memory` — device memory: tensors, workspaces, attention, margin, CUDA context;
* `gates` — capability and torch-build gates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from advisor.predict.calibrate import Calibration
from advisor.predict.calibrate import calibrate as calibrate_on_profile
from advisor.predict.gates import check
from advisor.predict.input_pipeline import InputModel, input_model
from advisor.predict.memory import predict_memory
from advisor.predict.profile_input import ProfileView, load_profile_file
from advisor.predict.roofline import effective_work
from advisor.predict.roofline import roofline as roofline_time
from simulator.catalog import Catalog, GpuSpec, load_catalog
from simulator.pool import Pool

BOUNDS = ("compute", "memory_bandwidth", "overhead", "input", "does_not_fit")

LIMITS = (
    "Step times come from a roofline per op class (FLOPs against the GPU's datasheet peak for the "
    "precision used, bytes against its bandwidth, a per-kernel launch floor); fused kernels, "
    "caches, clocks under power limits and multi-GPU communication are not modelled. Compare GPUs "
    "by the ratios more than by the absolute times.",
    "The input pipeline is assumed to run as fast per CPU core on the pool's machines as where it "
    "was measured, with the same num_workers.",
    "Memory = tensor peak (allocator peak on a GPU, live tensor bytes on a CPU) + cuBLAS workspace "
    "(8 MiB; 32 MiB on 9.0+) + cuDNN workspace (256 MiB when a CPU profile has convolutions) + "
    "S×S attention scores below 7.5 (no flash/mem-efficient kernels), plus a 20% margin (10% for "
    "a GPU-measured peak), plus a 0.5 GB CUDA context. Another batch size or sequence length "
    "needs a new profile.",
    "Checked against published single-GPU training throughputs of ResNet-50 and BERT-base on 11 "
    "GPU models from Pascal to Hopper (benchmarks/predictor_accuracy.py): predicted GPU-to-GPU "
    "speed ratios had a median error of about 15% over 126 pairs (BERT-base 12%, ResNet-50 26%, "
    "worst on GeForce cards); absolute step times were off by up to 2x.",
)


@dataclass(frozen=True)
class GpuPrediction:
    """One GPU model's predicted fit and speed for a profile."""

    gpu: str
    capability: float
    memory_gb: float                      # usable memory considered
    fits: bool
    predicted_memory_gb: float
    predicted_step_time_s: float
    predicted_compute_time_s: float       # GPU step without the input floor
    input_time_s: float                   # loader time per step with the profiled workers
    speedup: float | None                 # vs the catalog's reference GPU (None when not given)
    bound: str                            # one of BOUNDS
    runnable: bool
    reasons: tuple[str, ...]
    cpus_to_feed: int
    build_only: bool = False
    memory_breakdown_gb: Mapping[str, float] = field(default_factory=dict)
    time_by_class_s: Mapping[str, float] = field(default_factory=dict)
    kernel_time_s: float = 0.0            # Σ per-class roofline: the GPU's own work
    dispatch_floor_s: float = 0.0         # host dispatch of the step's kernels (eager Python)


@dataclass(frozen=True)
class FitRow:
    gpu: str
    capability: float
    memory_gb: float
    count: int
    fits: bool
    predicted_memory_gb: float
    predicted_step_time_s: float
    speedup: float
    bound: str
    shared_count: int
    backfill_count: int
    runnable: bool
    cpus_to_feed: int
    predicted_compute_time_s: float
    input_time_s: float
    reasons: list[str]
    kernel_time_s: float = 0.0
    dispatch_floor_s: float = 0.0


@dataclass(frozen=True)
class FitReport:
    rows: list[FitRow]
    pool: str
    reference_gpu: str
    reference_step_time_s: float
    measured_on: str
    calibration: str
    input_basis: str
    assumptions: list[str]
    limits: list[str]

    def to_dict(self) -> dict[str, Any]:
        from advisor.output import to_jsonable
        return {k: to_jsonable(getattr(self, k)) for k in self.__dataclass_fields__}


def as_view(profile: ProfileView | Mapping[str, Any]) -> ProfileView:
    return profile if isinstance(profile, ProfileView) else ProfileView.from_dict(profile)


def _measuring_capability(view: ProfileView, cal: Calibration) -> float | None:
    if cal.measured_gpu is not None:
        return cal.measured_gpu.capability
    return view.device_capability if view.measured_on_gpu else None


def predict_gpu(profile: ProfileView | Mapping[str, Any], gpu: GpuSpec, *,
                catalog: Catalog | None = None, usable_memory_gb: float | None = None,
                calibration: Calibration | None = None,
                reference_step_time_s: float | None = None) -> GpuPrediction:
    """Predict the profiled step on `gpu`. `usable_memory_gb` defaults to the datasheet memory;
    the speed-up is against `reference_step_time_s`, or the catalog's reference GPU."""
    view = as_view(profile)
    catalog = catalog or load_catalog()
    cal = calibration or calibrate_on_profile(view, catalog)
    work = effective_work(view)
    rf = roofline_time(view, gpu, cal.efficiencies, work)
    inp: InputModel = input_model(view)
    input_s = inp.time_per_step_s()
    compute_s = rf.step_s
    step_s = max(compute_s, input_s)
    mem = predict_memory(view, gpu, _measuring_capability(view, cal))
    capacity = gpu.memory_gb if usable_memory_gb is None else usable_memory_gb
    fits = mem.total_gb <= capacity
    gates = check(view, gpu)

    reasons: list[str] = list(gates.blockers)
    if not fits:
        reasons.append(f"needs {mem.total_gb:.1f} GB, {capacity:g} GB usable")
    if input_s >= compute_s and input_s > 0:
        bound = "input"
        advice = inp.advice(compute_s)
        if advice is None:
            fed = (f"{inp.cpus_to_feed(compute_s)} CPUs (workers + main) would keep it fed")
        else:
            fed = (f"the script can use {inp.usable_cpus} CPUs as written; to keep it fed, "
                   f"{advice}")
        reasons.append(f"input-bound: the loader gives a step's data every {input_s * 1e3:.3g} ms vs "
                       f"{compute_s * 1e3:.3g} ms of GPU work; {fed}")
    else:
        bound = rf.bound
    if not fits:
        bound = "does_not_fit"
    reasons.extend(n for n in gates.notes if n not in reasons)
    reasons.extend(n for n in rf.notes if n not in reasons)
    reasons.extend(n for n in mem.notes if n not in reasons)

    if reference_step_time_s is None:
        ref = catalog.reference
        if ref.name == gpu.name:
            reference_step_time_s = step_s
        else:
            ref_rf = roofline_time(view, ref, cal.efficiencies, work)
            reference_step_time_s = max(ref_rf.step_s, input_s)
    speedup = reference_step_time_s / step_s if step_s > 0 else None
    return GpuPrediction(
        gpu=gpu.name, capability=gpu.capability, memory_gb=capacity, fits=fits,
        predicted_memory_gb=round(mem.total_gb, 3), predicted_step_time_s=step_s,
        predicted_compute_time_s=compute_s, input_time_s=input_s,
        speedup=speedup, bound=bound, runnable=gates.runnable, reasons=tuple(reasons),
        cpus_to_feed=inp.cpus_to_feed(compute_s), build_only=gates.build_only,
        memory_breakdown_gb={"tensors": mem.tensors_gb, "workspace": mem.workspace_gb,
                             "attention": mem.attention_gb, "margin": mem.margin_gb,
                             "cuda_context": mem.context_gb},
        time_by_class_s={c.op_class: c.time_s for c in rf.classes},
        kernel_time_s=rf.gpu_time_s, dispatch_floor_s=rf.dispatch_floor_s,
    )


def predict_fit(profile: ProfileView | Mapping[str, Any], pool: Pool,
                catalog: Catalog | None = None) -> FitReport:
    """One row per GPU type in `pool`, sorted by predicted step time."""
    view = as_view(profile)
    catalog = catalog or load_catalog()
    cal = calibrate_on_profile(view, catalog)
    work = effective_work(view)
    inp = input_model(view)
    ref = catalog.reference
    ref_step = max(roofline_time(view, ref, cal.efficiencies, work).step_s, inp.time_per_step_s())

    by_gpu: dict[str, dict[str, Any]] = {}
    for slot in pool.slots:
        entry = by_gpu.setdefault(slot.gpu, {"shared": 0, "backfill": 0, "usable": slot.gpu_memory_gb})
        entry["backfill" if slot.backfill_only else "shared"] += slot.count
        entry["usable"] = min(entry["usable"], slot.gpu_memory_gb)

    rows: list[FitRow] = []
    for name, entry in by_gpu.items():
        spec = catalog.get(name)
        p = predict_gpu(view, spec, catalog=catalog, usable_memory_gb=entry["usable"],
                        calibration=cal, reference_step_time_s=ref_step)
        rows.append(FitRow(
            gpu=p.gpu, capability=p.capability, memory_gb=p.memory_gb,
            count=entry["shared"] + entry["backfill"], fits=p.fits,
            predicted_memory_gb=p.predicted_memory_gb,
            predicted_step_time_s=p.predicted_step_time_s, speedup=float(p.speedup or 0.0),
            bound=p.bound, shared_count=entry["shared"], backfill_count=entry["backfill"],
            runnable=p.runnable, cpus_to_feed=p.cpus_to_feed,
            predicted_compute_time_s=p.predicted_compute_time_s, input_time_s=p.input_time_s,
            reasons=list(p.reasons), kernel_time_s=p.kernel_time_s,
            dispatch_floor_s=p.dispatch_floor_s))
    rows.sort(key=lambda r: (r.predicted_step_time_s, r.gpu))

    assumptions = [cal.note, *view.defaults_used, *work.notes]
    if view.disturbed:
        assumptions.insert(0, f"the profile was measured on a busy machine ({view.disturbed}): "
                              "its measured times are uncertain; profile again on a quiet one")
    gates_ref = check(view, ref)
    if gates_ref.assumed_build:
        assumptions.append(gates_ref.assumed_build)
    device = view.device_name or view.device_kind
    return FitReport(rows=rows, pool=pool.name, reference_gpu=ref.name, reference_step_time_s=ref_step,
                     measured_on=f"{view.device_kind}: {device}", calibration=cal.note,
                     input_basis=inp.basis, assumptions=assumptions, limits=list(LIMITS))


__all__ = ["BOUNDS", "FitReport", "FitRow", "GpuPrediction", "load_profile_file", "predict_fit",
           "predict_gpu"]
