"""What one job asks of a pool, in the vocabulary of HTCondor submit files, and the unit rules.

One `Request` serves every part that speaks of a job's resources: `advisor recommend` (what it
chooses), the emitters (what they write), `advisor check` (what a submit file states), `advisor
logs` (what the jobs should ask for next time) and the simulator (what a simulated job needs
from a slot). Sizes are MiB, `_mb` in the names as HTCondor writes "MB" for MiB. Scenario files
and the simulator speak GiB: `Request.from_gb` builds a request from those keys, and the
properties `gpus`, `cpus`, `memory_gb`, `gpu_memory_gb`, `disk_gb` and `min_capability` read it
back. MiB and GiB differ by a power of two, so the conversion loses nothing.

HTCondor quantities (the HTCondor manual's submit commands): `request_memory`,
`retry_request_memory` and `gpus_minimum_memory` are MiB when no unit is written,
`request_disk` is KiB; the units K, KB, M, MB, G, GB, T and TB are powers of 2, in any case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

KIB_PER_MIB = 1024
MIB_PER_GIB = 1024

# MiB per unit; "" (no unit) is the command's own default unit (BARE_UNIT_MB).
UNIT_MB: dict[str, float] = {"K": 1 / KIB_PER_MIB, "KB": 1 / KIB_PER_MIB, "M": 1.0, "MB": 1.0,
                             "G": float(MIB_PER_GIB), "GB": float(MIB_PER_GIB),
                             "T": float(MIB_PER_GIB**2), "TB": float(MIB_PER_GIB**2)}
BARE_UNIT_MB: dict[str, float] = {"request_memory": 1.0, "retry_request_memory": 1.0,
                                  "gpus_minimum_memory": 1.0, "request_disk": 1 / KIB_PER_MIB}
_QUANTITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*$")


def gib_to_mib(gib: float) -> float:
    return gib * MIB_PER_GIB


def mib_to_gib(mib: float) -> float:
    return mib / MIB_PER_GIB


def kib_to_mib(kib: float) -> float:
    return kib / KIB_PER_MIB


def mib_to_kib(mib: float) -> float:
    return mib * KIB_PER_MIB


@dataclass(frozen=True)
class Quantity:
    """A size as a submit file writes it: `mb` (None when it is an expression, not a number),
    the unit as written (upper case; "" for none) and the text."""

    mb: float | None
    unit: str
    text: str

    @property
    def bare(self) -> bool:
        return self.mb is not None and self.unit == ""


def parse_quantity(value: str, bare_unit_mb: float) -> Quantity | None:
    """`6144MB` → 6144 MiB; a bare number is scaled by `bare_unit_mb` (`BARE_UNIT_MB`:
    request_disk 1/1024, request_memory 1). Returns Quantity(mb=None) for an expression and
    None for a unit HTCondor does not know."""
    m = _QUANTITY.match(value)
    if not m:
        return Quantity(None, "", value)
    unit = m.group(2).upper()
    if unit and unit not in UNIT_MB:
        return None
    return Quantity(float(m.group(1)) * (UNIT_MB[unit] if unit else bare_unit_mb), unit, value)


def _whole(x: Any) -> Any:
    """A whole float as an int (4096.0 → 4096), so MiB written out read as HTCondor writes them."""
    return int(x) if isinstance(x, float) and x.is_integer() else x


@dataclass(frozen=True)
class Request:
    """Per-job resources (the `request` of docs/DESIGN.md §4.2); the unit is in each name.

    `request_gpus` is GPUs per job (0: a CPU job). `gpus_minimum_capability` and
    `gpus_minimum_memory_mb` are floors on the GPUs a job may match (None: no floor).
    `job_length` names one of the pool's length tiers (None: the pool's default);
    `is_resumable` makes the job *eligible* for backfill on owned GPUs (it may still land on a
    shared GPU); `requires_backfill` forces it there (HTCondor `requirements =
    TARGET.BackfillSlot =?= true`, docs/DOMAIN.md §3) and needs `is_resumable`. `checkpoint_interval_minutes`
    is None for a job that does not checkpoint. `retry_request_memory_mb` is HTCondor's
    memory for a re-run after the job went over `request_memory_mb`. `cpu_ok` lets the job
    run on CPU slots, where a mean-sized task takes `cpu_hours` core-hours (the simulator's
    CPU fallback).
    """

    request_cpus: int = 1
    request_memory_mb: float = 4096
    request_disk_mb: float = 10240
    request_gpus: int = 1
    gpus_minimum_capability: float | None = None
    gpus_minimum_memory_mb: float | None = None
    job_length: str | None = None
    is_resumable: bool = False
    checkpoint_interval_minutes: float | None = None
    gpus_maximum_capability: float | None = None
    retry_request_memory_mb: float | None = None
    cpu_ok: bool = False
    cpu_hours: float | None = None
    requires_backfill: bool = False

    # In `to_dict` only when set (the JSON contract predates them).
    OPTIONAL_KEYS = ("retry_request_memory_mb", "cpu_ok", "cpu_hours", "requires_backfill")

    def __post_init__(self) -> None:
        for name in ("request_memory_mb", "request_disk_mb", "gpus_minimum_memory_mb",
                     "retry_request_memory_mb"):
            object.__setattr__(self, name, _whole(getattr(self, name)))

    @classmethod
    def from_gb(cls, *, gpus: int = 1, cpus: int = 1, memory_gb: float = 1.0,
                gpu_memory_gb: float = 0.0, disk_gb: float = 0.0, min_capability: float = 0.0,
                job_length: str | None = None, is_resumable: bool = False, cpu_ok: bool = False,
                cpu_hours: float | None = None, requires_backfill: bool = False) -> Request:
        """A request in the scenario file's words (GiB; 0 for "no floor"). The defaults are the
        scenario file's."""
        return cls(request_cpus=cpus, request_memory_mb=gib_to_mib(memory_gb),
                   request_disk_mb=gib_to_mib(disk_gb), request_gpus=gpus,
                   gpus_minimum_capability=min_capability or None,
                   gpus_minimum_memory_mb=gib_to_mib(gpu_memory_gb) or None,
                   job_length=job_length, is_resumable=is_resumable, cpu_ok=cpu_ok,
                   cpu_hours=cpu_hours, requires_backfill=requires_backfill)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in self.OPTIONAL_KEYS or value != f.default:
                out[f.name] = value
        return out

    @property
    def checkpoints(self) -> bool:
        return self.checkpoint_interval_minutes is not None

    # --- the simulator's words (scenario files: GiB, 0 for "no floor") ---------------------
    @property
    def gpus(self) -> int:
        return self.request_gpus

    @property
    def cpus(self) -> int:
        return self.request_cpus

    @property
    def memory_gb(self) -> float:
        return mib_to_gib(self.request_memory_mb)

    @property
    def gpu_memory_gb(self) -> float:
        return mib_to_gib(self.gpus_minimum_memory_mb or 0.0)

    @property
    def disk_gb(self) -> float:
        return mib_to_gib(self.request_disk_mb)

    @property
    def min_capability(self) -> float:
        return self.gpus_minimum_capability or 0.0
