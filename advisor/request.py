"""What a job file needs besides the resources: what runs, which files move, how many jobs.

`Request` (the resources, defined once in `simulator.request`, re-exported here) is what
`advisor recommend` chooses and what the emitters turn into an HTCondor submit file, a Slurm
batch script or a Kubernetes Job. `JobSpec` is everything else a submit file needs: what to run,
which files go in and out, how many jobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.request import Request

__all__ = ["DataFile", "JobSpec", "Request"]


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
