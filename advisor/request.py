"""A resource request for one job, in the vocabulary users know from HTCondor submit files.

`Request` is what `advisor recommend` chooses and what the emitters turn into an HTCondor
submit file, a Slurm batch script or a Kubernetes Job. `JobSpec` is everything else a submit
file needs: what to run, which files go in and out, how many jobs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    """Per-job resources (DESIGN §4.2 `request`). Units are in the names."""

    request_cpus: int = 1
    request_memory_mb: int = 4096
    request_disk_mb: int = 10240
    request_gpus: int = 1
    gpus_minimum_capability: float | None = None
    gpus_minimum_memory_mb: int | None = None
    job_length: str | None = None          # the pool's tier name (CHTC short/medium/long)
    is_resumable: bool = False             # may run as backfill on owned GPUs (+is_resumable)
    checkpoint_interval_minutes: float | None = None   # None: the job does not checkpoint
    gpus_maximum_capability: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def checkpoints(self) -> bool:
        return self.checkpoint_interval_minutes is not None


@dataclass(frozen=True)
class DataFile:
    """One input file (or archive) and its size, so the emitter can pick the transfer method."""

    path: str
    size_gb: float


@dataclass(frozen=True)
class JobSpec:
    """What the job runs and moves; the emitters combine it with a Request."""

    name: str
    executable: str = "run.sh"
    arguments: str = ""
    inputs: tuple[DataFile, ...] = ()
    outputs: tuple[str, ...] = ()
    container_image: str | None = None
    queue: int = 1                              # number of jobs (items are split across them)
    items_per_job: int = 1
    checkpoint_files: tuple[str, ...] = ("checkpoint.pt",)
    expected_runtime_hours: float | None = None  # per job, on the slowest GPU it may land on
    max_runtime_hours: float | None = None       # the tier's limit (for Slurm --time)
    extra: dict[str, Any] = field(default_factory=dict)
