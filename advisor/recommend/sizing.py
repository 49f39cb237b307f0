"""Request values from measurements, each with the reason that goes into the submit file.

* `request_memory`: the measured host peak × (1 + HOST_HEADROOM), plus the CUDA runtime's host
  memory (CUDA_RUNTIME_HOST_MB) when the profile ran on a CPU (the job will load CUDA, the
  profile did not); or the workload's stated memory as given; rounded up to 256 MB.
* `request_disk`: per job, the input archive + its unpacked copy + outputs + two checkpoints (the
  one being written and the last good one) + the software environment (container or shared
  input), × (1 + DISK_HEADROOM).
* `gpus_minimum_memory`: the predicted device peak (allocator + CUDA context + margin).
* `gpus_minimum_capability`: the feature gates of `advisor.predict.gates` (bf16, FP8) and the
  floor of the torch build the job's image carries (`advisor.emit.container.choose_build`).
* `request_cpus`: what the profiled loader can use: its DataLoader workers + the main process
  (more CPUs sit idle unless the script reads the CPU count); without a profile, the workload's
  `cpus`, else a default per kind of work (DEFAULT_CPUS); never more than half the usable GPU
  slots offer per GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from advisor.assess.runtime import GpuOption
from advisor.emit.container import Build, choose_build
from advisor.predict.gates import BF16_MIN, FP8_MIN
from advisor.workload import Workload
from simulator.pool import Pool

HOST_HEADROOM = 0.25
DISK_HEADROOM = 0.25
ENVIRONMENT_GB = 5.0            # assumption: a PyTorch environment without a container image
MEMORY_STEP_MB = 256            # request_memory and gpus_minimum_memory are rounded up to this
DISK_STEP_MB = 1024             # request_disk is rounded up to whole GB
# Host memory the CUDA runtime adds to a process once it initialises CUDA and runs its first
# kernel (driver, cuBLAS/cuDNN handles, kernel images): resident memory went from 0.32 to 2.06 GB
# in pytorch/pytorch#113326 (torch 2.2, CUDA 11.8, lazy module loading) and by ~1.1 GB in #12873.
# A profile taken on a CPU never loads CUDA, so its host peak leaves this out.
CUDA_RUNTIME_HOST_MB = 1750
# CPUs without a profile, per kind of work (what a facilitator gives a one-GPU job by default):
# training keeps 3 DataLoader workers + the main process busy decoding and augmenting batches
# (4 = the CPUs per GPU of the smallest CHTC GPU server in the pool file); inference reads and
# decodes the next input while the GPU works on this one: one loader + the main process.
DEFAULT_CPUS = {"training": 4, "inference": 2}
# Unpacking an archive: the compressed file stays in the sandbox next to its unpacked copy, which
# is larger by the compression ratio; 1.0 assumes already-compressed media (images, PDFs).
UNPACKED_RATIO = 1.0


@dataclass(frozen=True)
class Sizing:
    request_cpus: int
    request_memory_mb: int
    request_disk_mb: int
    gpus_minimum_memory_mb: int | None
    gate_capability: float | None
    reasons: dict[str, str]
    build: Build | None = None          # the torch build the job's image carries


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
        return least, pool.possessive if pool is not None else "HTCondor's"
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
        on_cpu = str((prof.get("device") or {}).get("kind") or "") == "cpu" and per.gpus > 0
        cuda = CUDA_RUNTIME_HOST_MB if on_cpu else 0
        memory_mb = round_memory_mb(max(host * (1 + HOST_HEADROOM) + cuda, 1024))
        why["request_memory"] = (f"measured host peak {host / 1024:.2f} GB + {HOST_HEADROOM:.0%} "
                                 "headroom (advisor profile)"
                                 + (f" + {cuda / 1024:.2f} GB the CUDA runtime adds on a GPU (profiled "
                                    "on a CPU)" if cuda else ""))
    else:
        memory_mb = round_memory_mb(per.memory_gb * 1024)
        why["request_memory"] = f"{per.memory_gb:g} GB per task, as stated in the workload"
    ckpt_gb = per.checkpoint_gb or 0.0
    env_gb = workload.shared_input_gb or (0.0 if workload.container else ENVIRONMENT_GB)
    in_gb = items_per_job * per.input_gb
    if prof is not None:
        in_gb = float((prof.get("data") or {}).get("bytes") or 0) / 1e9
        ckpt_gb = max(ckpt_gb, float(prof.get("checkpoint_bytes") or 0) / 1e9)
    unpacked_gb = in_gb * UNPACKED_RATIO
    disk_gb = (in_gb + unpacked_gb + items_per_job * per.output_gb + 2 * ckpt_gb + env_gb)
    disk_mb = round_disk_mb(max(disk_gb * (1 + DISK_HEADROOM), 1.0) * 1024)
    why["request_disk"] = (f"{in_gb:.3g} GB archive + {unpacked_gb:.3g} GB unpacked + "
                           f"{items_per_job * per.output_gb:.3g} GB out + 2 × {ckpt_gb:.3g} GB checkpoints + "
                           f"{env_gb:g} GB environment, + {DISK_HEADROOM:.0%}")
    gpu_mem_mb = None
    if per.gpus > 0 and usable:
        need_gb = min(o.needed_memory_gb for o in usable)
        gpu_mem_mb = round_memory_mb(need_gb * 1024)
        source = "predicted device peak" if prof is not None else f"{per.gpu_memory_gb:g} GB stated"
        why["gpus_minimum_memory"] = f"{source} + margin + CUDA context = {need_gb:.1f} GB"
    cpus, why["request_cpus"] = _cpus(workload, usable, pool)
    gate, gate_why = precision_gate(workload)
    build = None
    if per.gpus > 0 and pool is not None:
        caps: dict[float, int] = {}
        for o in usable:
            caps[o.capability] = caps.get(o.capability, 0) + o.shared + o.backfill
        torch_text = str(((prof or {}).get("environment") or {}).get("torch") or "") or None
        build = choose_build(pool, gate, caps, torch_text)
        if gate is None or build.floor > gate:
            gate_why = build.reason
        gate = build.floor if gate is None else max(gate, build.floor)
    if gate_why:
        why["gpus_minimum_capability"] = gate_why
    return Sizing(request_cpus=cpus, request_memory_mb=memory_mb, request_disk_mb=disk_mb,
                  gpus_minimum_memory_mb=gpu_mem_mb, gate_capability=gate, reasons=why, build=build)


def _cpus(workload: Workload, usable: list[GpuOption], pool: Pool | None) -> tuple[int, str]:
    """request_cpus and why: the profiled loader's workers + 1; without a profile the stated
    `cpus`, else DEFAULT_CPUS for the kind of work; capped by what the GPU slots offer."""
    per, prof = workload.per_task, workload.profile_data
    least, whose = minimum_cpus(pool)
    cap = cpu_cap(pool, usable) if pool is not None and usable else None
    if per.cpus:
        return per.cpus, "as stated in the workload"
    if prof is not None:
        loader = prof.get("dataloader") or {}
        workers = int(loader.get("num_workers") or 0)
        want = workers + 1
        text = (f"{workers} DataLoader workers + the main process, as profiled (more CPUs would "
                "sit idle: the script starts a fixed number of workers)")
        fed = max((o.cpus_to_feed or 0 for o in usable), default=0)
        if fed > want:
            text += (f"; the fastest GPU would need {fed} to be fed: raise num_workers to "
                     f"{fed - 1} and profile again")
    elif per.gpus > 0:
        want = DEFAULT_CPUS.get(workload.kind, least)
        text = (f"nothing measured about data loading: the default for {workload.kind} "
                f"({want}: see DEFAULT_CPUS in advisor/recommend/sizing.py); profile the script to measure it")
    else:
        return least, f"a CPU job with nothing measured: {whose} minimum of {least}"
    cpus = max(least, want)
    if cap is not None and cpus > cap:
        text += (f"; only {cap} per GPU are offered by at least half of the usable GPU slots, "
                 f"so {cap}")
        cpus = max(least, cap)
    return cpus, text
