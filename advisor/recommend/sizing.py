"""Request values from measurements, each with the reason that goes into the submit file.

* `request_memory`: the measured host peak × (1 + HOST_HEADROOM), or the workload's stated
  memory as given; rounded up to 256 MB.
* `request_disk`: inputs + outputs + two checkpoints (the one being written and the last good
  one) + the software environment (container or shared input), × (1 + DISK_HEADROOM).
* `gpus_minimum_memory`: the predicted device peak (allocator + CUDA context + margin).
* `gpus_minimum_capability`: the feature gates of `advisor.predict.gates` (bf16, FP8) or the
  floor the simulation found pays off.
* `request_cpus`: what keeps the GPU fed (data-loader workers + the main process), from the
  predictor; the pool's minimum (`limits.min_request_cpus`, else 1) when nothing was measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from advisor.assess.runtime import GpuOption
from advisor.predict.gates import BF16_MIN, FP8_MIN
from advisor.workload import Workload
from simulator.pool import Pool

HOST_HEADROOM = 0.25
DISK_HEADROOM = 0.25
ENVIRONMENT_GB = 5.0            # assumption: a PyTorch environment without a container image
MEMORY_STEP_MB = 256            # request_memory and gpus_minimum_memory are rounded up to this
DISK_STEP_MB = 1024             # request_disk is rounded up to whole GB


@dataclass(frozen=True)
class Sizing:
    request_cpus: int
    request_memory_mb: int
    request_disk_mb: int
    gpus_minimum_memory_mb: int | None
    gate_capability: float | None
    reasons: dict[str, str]


def round_memory_mb(mb: float) -> int:
    """Host or GPU memory rounded up to MEMORY_STEP_MB, at least one step."""
    return max(MEMORY_STEP_MB, int(math.ceil(mb / MEMORY_STEP_MB) * MEMORY_STEP_MB))


def round_disk_mb(mb: float) -> int:
    """Disk rounded up to DISK_STEP_MB (whole GB), at least one step."""
    return max(DISK_STEP_MB, int(math.ceil(mb / DISK_STEP_MB) * DISK_STEP_MB))


def precision_gate(workload: Workload) -> tuple[float | None, str | None]:
    """The capability the work's precision needs, and why."""
    prof = workload.profile_data
    if prof is not None:
        prec = prof.get("precision") or {}
        autocast = str(prec.get("autocast_dtype") or "")
        if "bfloat16" in autocast or prec.get("param_dtype") == "bfloat16":
            return BF16_MIN, f"the script computes in bfloat16 (needs capability {BF16_MIN:.1f})"
        if prec.get("tf32_matmul"):
            return None, None  # TF32 is a speed-up, not a requirement: older GPUs run fp32
        return None, None
    p = workload.per_task.precision
    if p == "bf16":
        return BF16_MIN, f"bf16 needs capability {BF16_MIN:.1f}"
    if p == "fp8":
        return FP8_MIN, f"FP8 needs capability {FP8_MIN:.1f}"
    return None, None


def minimum_cpus(pool: Pool | None) -> tuple[int, str]:
    """The fewest CPUs a job may request, and whose rule that is: the pool's
    `limits.min_request_cpus`, else HTCondor's default of 1."""
    least = pool.limits.get("min_request_cpus") if pool is not None else None
    if isinstance(least, int) and not isinstance(least, bool) and least >= 1:
        return least, f"{pool.name}'s" if pool is not None else "HTCondor's"
    return 1, "HTCondor's default"


def cpu_cap(pool: Pool, usable: list[GpuOption]) -> int:
    """The most CPUs a one-GPU job can ask for and still match at least half of the usable shared
    GPUs (slots hold their server's CPUs divided among its GPUs)."""
    names = {o.gpu for o in usable}
    slots = sorted((s for s in pool.slots if s.gpu in names and not s.backfill_only),
                   key=lambda s: -s.cpus) or sorted((s for s in pool.slots if s.gpu in names),
                                                    key=lambda s: -s.cpus)
    total = sum(s.count for s in slots)
    seen = 0
    for s in slots:
        seen += s.count
        if seen * 2 >= total:
            return max(1, s.cpus)
    return 1


def size_request(workload: Workload, usable: list[GpuOption], items_per_job: int = 1,
                 pool: Pool | None = None) -> Sizing:
    per = workload.per_task
    why: dict[str, str] = {}
    prof = workload.profile_data
    if prof is not None:
        host = float((prof.get("peak_memory_bytes") or {}).get("host") or 0) / 2**20
        memory_mb = round_memory_mb(max(host * (1 + HOST_HEADROOM), 1024))
        why["request_memory"] = (f"measured host peak {host / 1024:.2f} GB + {HOST_HEADROOM:.0%} "
                                 "headroom (advisor profile)")
    else:
        memory_mb = round_memory_mb(per.memory_gb * 1024)
        why["request_memory"] = f"{per.memory_gb:g} GB per task, as stated in the workload"
    ckpt_gb = per.checkpoint_gb or 0.0
    env_gb = workload.shared_input_gb or (0.0 if workload.container else ENVIRONMENT_GB)
    disk_gb = (items_per_job * (per.input_gb + per.output_gb) + 2 * ckpt_gb + env_gb)
    disk_mb = round_disk_mb(max(disk_gb * (1 + DISK_HEADROOM), 1.0) * 1024)
    why["request_disk"] = (f"{items_per_job * per.input_gb:.3g} GB in + {items_per_job * per.output_gb:.3g} "
                           f"GB out + 2 × {ckpt_gb:.3g} GB checkpoints + {env_gb:g} GB environment, "
                           f"+ {DISK_HEADROOM:.0%}")
    gpu_mem_mb = None
    if per.gpus > 0 and usable:
        need_gb = min(o.needed_memory_gb for o in usable)
        gpu_mem_mb = round_memory_mb(need_gb * 1024)
        source = "predicted device peak" if prof is not None else f"{per.gpu_memory_gb:g} GB stated"
        why["gpus_minimum_memory"] = f"{source} + margin + CUDA context = {need_gb:.1f} GB"
    if per.cpus:
        cpus = per.cpus
        why["request_cpus"] = "as stated in the workload"
    else:
        fed = [o.cpus_to_feed for o in usable if o.cpus_to_feed]
        if fed:
            want = max(1, max(fed))
            cap = cpu_cap(pool, usable) if pool is not None else want
            cpus = min(want, cap)
            why["request_cpus"] = (f"{want} CPUs keep the fastest usable GPU fed (data-loader "
                                   "workers + main process, predicted)")
            if cpus < want:
                why["request_cpus"] = (f"{want} CPUs would keep the fastest GPU fed, but only {cap} "
                                       "per GPU are offered by at least half of the usable GPU "
                                       f"slots: {cpus} (the job is input-bound there)")
        else:
            cpus, whose = minimum_cpus(pool)
            why["request_cpus"] = f"nothing measured about data loading: {whose} minimum of {cpus}"
    gate, gate_why = precision_gate(workload)
    if gate_why:
        why["gpus_minimum_capability"] = gate_why
    return Sizing(request_cpus=cpus, request_memory_mb=memory_mb, request_disk_mb=disk_mb,
                  gpus_minimum_memory_mb=gpu_mem_mb, gate_capability=gate, reasons=why)
