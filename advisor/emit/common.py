"""Helpers shared by the emitters: names, units, durations, the reasons a JobSpec carries."""

from __future__ import annotations

import math
import re
from typing import Any

from advisor.errors import InputError
from advisor.request import JobSpec, Request
from simulator.pool import Pool, Tier

# The exit code that tells HTCondor "checkpoint taken, restart me" (CHTC checkpointing.md; the
# HTCondor manual suggests 85 because Linux uses it for "restart").
CHECKPOINT_EXIT_CODE = 85
# What GNU timeout returns when the time limit stopped the command.
TIMEOUT_EXIT_CODE = 124
WRAPPER_NAME = "checkpoint_wrapper.sh"
# Seconds the program gets after SIGTERM to finish writing its checkpoint before SIGKILL.
CHECKPOINT_GRACE_SECONDS = 120
# HTCondor sends SIGKILL 600 s after an eviction's SIGTERM on every pool measured (docs/DOMAIN.md);
# the wrapper waits a little less, so that it exits itself.
EVICTION_GRACE_SECONDS = 570
# What the wrapper exits with after an eviction's SIGTERM: 128 + SIGTERM, never 85 (a job that
# exits during a vacate is not completed; its checkpoint comes back with ON_EXIT_OR_EVICT).
EVICTED_EXIT_CODE = 143
# The directories every job writes (docs: "Contract for jobs that run"); run.sh creates both first.
CHECKPOINT_DIR = "checkpoints"
OUTPUT_DIR = "output"
# When set (seconds), the checkpoint wrapper uses it instead of its interval: `advisor trial
# --checkpoint-every S` sets it to exercise exit-85 restarts in seconds instead of hours.
CHECKPOINT_INTERVAL_ENV = "ADVISOR_CHECKPOINT_INTERVAL_S"


def safe_name(name: str) -> str:
    """A file-name-safe version of the job name (letters, digits, `-`, `_`, `.`)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip()).strip("-.")
    return cleaned or "job"


def dns_name(name: str) -> str:
    """A Kubernetes object name (RFC 1123 label: lower case, digits, `-`, at most 63)."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.strip().lower()).strip("-")
    cleaned = re.sub(r"-{2,}", "-", cleaned)[:63].strip("-")
    return cleaned or "job"


def reasons(job: JobSpec) -> dict[str, str]:
    """Why each value was chosen, keyed by submit command (`JobSpec.extra["reasons"]`)."""
    raw: Any = job.extra.get("reasons") or {}
    if not isinstance(raw, dict):
        raise InputError("job.extra.reasons", raw, "must be a mapping of command to reason.",
                         'give e.g. {"request_memory": "peak 4.1 GB measured by advisor profile"}.')
    return {str(k): str(v) for k, v in raw.items()}


def check_request(request: Request) -> None:
    """Refuse values no scheduler can take, naming the field."""
    if request.request_cpus < 1:
        raise InputError("request_cpus", request.request_cpus, "must be at least 1.",
                         "request at least 1 CPU (CHTC: always request at least 1).")
    if request.request_memory_mb <= 0:
        raise InputError("request_memory_mb", request.request_memory_mb, "must be positive.",
                         "give the host memory per job in MB, e.g. 6144.")
    if request.request_disk_mb <= 0:
        raise InputError("request_disk_mb", request.request_disk_mb, "must be positive.",
                         "give the disk per job in MB, e.g. 20480.")
    if request.request_gpus < 0:
        raise InputError("request_gpus", request.request_gpus, "must be 0 or more.",
                         "give the number of GPUs per job, e.g. 1.")
    ci = request.checkpoint_interval_minutes
    if ci is not None and (not math.isfinite(ci) or ci <= 0):
        raise InputError("checkpoint_interval_minutes", ci, "must be a positive number of minutes.",
                         "give e.g. 240 (CHTC: between 1 and 5 hours), or None for no checkpointing.")


def check_job(job: JobSpec, request: Request) -> None:
    if job.queue < 1:
        raise InputError("queue", job.queue, "must be at least 1.", "give the number of jobs, e.g. 100.")
    if not job.executable.strip():
        raise InputError("executable", job.executable, "is empty.", "name the program the job runs.")
    if request.checkpoints and not job.checkpoint_files:
        raise InputError("checkpoint_files", job.checkpoint_files,
                         "is empty but the request checkpoints.",
                         "name the files that make up the checkpoint, e.g. ('checkpoint.pt',).")


def tier_for(request: Request, pool: Pool) -> Tier | None:
    """The pool's tier for this request (its default when the request names none)."""
    if request.job_length:
        return pool.tier(request.job_length)
    return pool.default_tier


def runtime_limit_hours(request: Request, job: JobSpec, pool: Pool) -> float | None:
    """The wall-time limit for one job: JobSpec.max_runtime_hours, else the tier's limit."""
    if job.max_runtime_hours is not None:
        return job.max_runtime_hours
    tier = tier_for(request, pool)
    if tier is not None:
        return tier.max_hours
    return job.expected_runtime_hours


def timeout_duration(minutes: float) -> str:
    """A duration GNU timeout reads: `4h`, `90m`, `1.5s`."""
    seconds = minutes * 60.0
    if seconds >= 3600 and abs(seconds / 3600 - round(seconds / 3600)) < 1e-9:
        return f"{int(round(seconds / 3600))}h"
    if seconds >= 60 and abs(minutes - round(minutes)) < 1e-9:
        return f"{int(round(minutes))}m"
    return f"{round(seconds, 3):g}s"


def slurm_time(hours: float) -> str:
    """Slurm `--time` as D-HH:MM:SS (rounded up to the minute)."""
    total_minutes = int(math.ceil(hours * 60 - 1e-9))
    days, rem = divmod(total_minutes, 24 * 60)
    hh, mm = divmod(rem, 60)
    return f"{days}-{hh:02d}:{mm:02d}:00"


def disk_quantity(mb: float) -> str:
    """A disk size with its unit, for HTCondor (a bare number there is KiB)."""
    return f"{mb // 1024}GB" if mb % 1024 == 0 else f"{mb}MB"


def program_path(executable: str) -> str:
    """How a shell in the job's scratch directory runs the program."""
    return executable if "/" in executable else f"./{executable}"
