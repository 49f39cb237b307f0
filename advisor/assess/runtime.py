"""How long one task takes on each GPU type of a pool, and whether it fits there.

Two sources, in order of trust:
1. a measured profile (`per_task.profile`): the predictor (`advisor.predict`) gives the step time
   and device memory on each GPU; the task takes `steps` such steps;
2. otherwise `gpu_hours` on the reference GPU, scaled by a *typical training mix* speed model:
   `Catalog.training_speed` (a share `TYPICAL_COMPUTE_SHARE` of a step scales with the compute
   achieved at the work's precision, the rest with memory bandwidth; `describe_speed_model()`),
   the first-order estimate the simulator also uses by default; the output says it is one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from advisor.workload import Workload
from simulator.catalog import Catalog
from simulator.pool import Pool

CUDA_CONTEXT_GB = 0.5       # docs/DOMAIN.md §5: the CUDA context costs ~300-500 MB beyond the allocator
MEMORY_MARGIN = 0.10        # headroom on top of the stated or predicted device memory
DEFAULT_PRECISION = "tf32"  # PyTorch's default for convolutions on >= 8.0; fp32 elsewhere


@dataclass(frozen=True)
class GpuOption:
    """One GPU type of the pool, for one task of the workload."""

    gpu: str
    capability: float
    gpu_memory_gb: float
    shared: int                     # GPUs of this type open to everyone
    backfill: int                   # GPUs reachable only as +is_resumable backfill
    fits: bool
    needed_memory_gb: float
    speed: float                    # relative to the reference GPU (higher is faster)
    task_hours: float | None        # wall hours of one task here (None: does not fit)
    bound: str = "typical-mix"
    cpus_to_feed: int | None = None
    reasons: tuple[str, ...] = field(default_factory=tuple)
    method: str = "typical-mix"     # "profile" when predicted from a measured profile


def needed_memory_gb(stated_gb: float) -> float:
    return stated_gb * (1 + MEMORY_MARGIN) + CUDA_CONTEXT_GB if stated_gb > 0 else 0.0


def gpu_options(workload: Workload, pool: Pool, catalog: Catalog) -> list[GpuOption]:
    """One option per GPU type in the pool, fastest first."""
    per = workload.per_task
    counts: dict[str, dict[str, Any]] = {}
    for s in pool.slots:
        c = counts.setdefault(s.gpu, {"shared": 0, "backfill": 0, "mem": s.gpu_memory_gb})
        c["backfill" if s.backfill_only else "shared"] += s.count
        c["mem"] = min(c["mem"], s.gpu_memory_gb)
    if workload.profile_data is not None:
        return _from_profile(workload, pool, catalog)
    reference = catalog.get(per.reference_gpu)
    precision = per.precision or DEFAULT_PRECISION
    need = needed_memory_gb(per.gpu_memory_gb)
    out = []
    for name, c in counts.items():
        spec = catalog.get(name)
        fits = need <= c["mem"]
        speed = catalog.training_speed(spec, precision, reference=reference)
        parallel = max(1, per.gpus * per.nodes)
        hours = per.gpu_hours / parallel / speed if (fits and per.gpu_hours) else None
        reasons = []
        _, used = spec.effective_peak(precision)
        if used != precision:
            reasons.append(f"no {precision} on capability {spec.capability:.1f}: runs at {used}")
        if not fits:
            reasons.append(f"needs {need:.1f} GB ({per.gpu_memory_gb:g} GB + {MEMORY_MARGIN:.0%} margin "
                           f"+ {CUDA_CONTEXT_GB} GB CUDA context) > {c['mem']:g} GB usable")
        out.append(GpuOption(gpu=name, capability=spec.capability, gpu_memory_gb=c["mem"],
                             shared=c["shared"], backfill=c["backfill"], fits=fits,
                             needed_memory_gb=need, speed=speed, task_hours=hours,
                             bound="typical-mix" if fits else "does_not_fit",
                             reasons=tuple(reasons)))
    return sorted(out, key=lambda o: (not o.fits, -(o.speed)))


def _from_profile(workload: Workload, pool: Pool, catalog: Catalog) -> list[GpuOption]:
    from advisor.predict import predict_fit  # the predictor is the one source of per-GPU truth

    per = workload.per_task
    assert workload.profile_data is not None and per.steps is not None
    report = predict_fit(workload.profile_data, pool, catalog)
    out = []
    for row in report.rows:
        usable = bool(row.fits and row.runnable)
        hours = row.predicted_step_time_s * per.steps / 3600.0 if usable else None
        out.append(GpuOption(
            gpu=row.gpu, capability=row.capability, gpu_memory_gb=row.memory_gb,
            shared=row.shared_count, backfill=row.backfill_count, fits=usable,
            needed_memory_gb=row.predicted_memory_gb, speed=row.speedup or 0.0,
            task_hours=hours, bound=row.bound, cpus_to_feed=row.cpus_to_feed,
            reasons=tuple(row.reasons), method="profile"))
    return sorted(out, key=lambda o: (not o.fits, -(o.speed)))
