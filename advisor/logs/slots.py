"""Owners' use of their own GPUs, measured from snapshots of a pool's slots.

A job's event log does not show what the owners of a GPU do, but the pool's slot ClassAds do.
Several snapshots (`condor_status -json` or `-long`, read by `advisor.logs.snapshots`) taken at
different times are pooled.

Method:
* An owned GPU is a GPU on a machine (the `Machine` attribute) that advertises at least one
  slot with `BackfillSlot == true`: research groups' machines lend their idle GPUs to others
  through such backfill slots. Machines without one (GPU Lab, shared machines) are left out.
* A machine's GPUs are counted once, from its primary (non-backfill) slots: the sum of
  `TotalSlotGPUs` of its partitionable and static primary slots (the startd publishes
  `TotalSlot<resource>` as the quantity given to the slot and `<resource>` as what is left in a
  partitionable slot or held by a dynamic or static one); where no such slot carries it,
  `TotalGPUs` (the machine's total, the same in every slot's ad), then `DetectedGPUs` (a count,
  or the list of GPU ids the discovery found), then the sum of the primary dynamic slots' `GPUs`.
  The backfill slots overlap the same GPUs, so they add none.
* The owners' busy GPUs are the `GPUs` of the machine's primary dynamic and static slots in
  `State == "Claimed"` (a partitionable slot's own `GPUs` is what is left unclaimed in it;
  slots in `Owner` state, busy outside HTCondor, are not counted), at most the machine's GPUs.
* busy fraction = busy GPUs / owned GPUs, both summed over all snapshots (GPU-snapshots), with
  the exact binomial (Clopper-Pearson, scipy) interval, or Wilson's where scipy is missing.
  The same GPUs are seen in every snapshot and an owner's claim lasts across snapshots, so the
  GPU-snapshots are not independent: the interval is optimistic (too narrow).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

from advisor.errors import InputError
from advisor.logs.snapshots import (
    DETECTED_GPUS,
    FIELD,
    TOTAL_GPUS,
    TOTAL_SLOT_GPUS,
    Slot,
    read_snapshot,
)
from advisor.output import atomic_write

OWNER_BUSY_MAX = 0.99  # the largest owner_busy_fraction a scenario accepts

NO_BACKFILL_FIX = ("these snapshots show no backfill slot (BackfillSlot == true); take them on a "
                   "pool with owned GPUs")


# --- counting ---------------------------------------------------------------------------------

def _machine_gpus(slots: list[Slot]) -> tuple[int, str]:
    """A machine's GPUs, counted once, and the attribute they were read from."""
    parents = [s for s in slots if not s.backfill and not s.dynamic]
    if parents and all(s.total_slot_gpus is not None
                       or (not s.partitionable and s.gpus is not None) for s in parents):
        return sum(s.total_slot_gpus if s.total_slot_gpus is not None else s.gpus or 0
                   for s in parents), TOTAL_SLOT_GPUS
    totals = [s.total_gpus for s in slots if s.total_gpus is not None]
    if totals:
        return max(totals), TOTAL_GPUS
    detected = [s.detected_gpus for s in slots if s.detected_gpus is not None]
    if detected:
        return max(detected), DETECTED_GPUS
    return sum(s.gpus or 0 for s in slots if not s.backfill and s.dynamic), "dynamic GPUs"


@dataclass
class Snapshot:
    """The counts of one snapshot."""

    source: str
    format: str
    ads: int
    without_machine: int
    duplicates: int
    owned_machines: int       # machines with a backfill slot and at least one GPU
    owned_gpus: int
    busy_gpus: int
    backfill_machines_without_gpus: int
    other_gpu_machines: int   # machines with GPUs but no backfill slot: left out
    basis: dict[str, int] = field(default_factory=dict)
    clipped: list[str] = field(default_factory=list)  # claimed more GPUs than they have

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def count_snapshot(source: str, fmt: str, slots: Sequence[Slot],
                   counts: dict[str, int]) -> Snapshot:
    by_machine: dict[str, list[Slot]] = {}
    for s in slots:
        by_machine.setdefault(s.machine, []).append(s)
    snap = Snapshot(source=source, format=fmt, ads=counts["ads"],
                    without_machine=counts["without_machine"], duplicates=counts["duplicates"],
                    owned_machines=0, owned_gpus=0, busy_gpus=0,
                    backfill_machines_without_gpus=0, other_gpu_machines=0)
    for machine, ads in sorted(by_machine.items()):
        gpus, basis = _machine_gpus(ads)
        if not any(s.backfill for s in ads):
            snap.other_gpu_machines += gpus > 0
            continue
        if gpus == 0:
            snap.backfill_machines_without_gpus += 1
            continue
        busy = sum(s.gpus or 0 for s in ads
                   if not s.backfill and not s.partitionable
                   and (s.state or "").lower() == "claimed")  # ClassAd == ignores case
        if busy > gpus:
            snap.clipped.append(machine)
            busy = gpus
        snap.owned_machines += 1
        snap.owned_gpus += gpus
        snap.busy_gpus += busy
        snap.basis[basis] = snap.basis.get(basis, 0) + 1
    return snap


# --- the interval -----------------------------------------------------------------------------

def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float, str]:
    """(low, high, method): Clopper-Pearson with scipy, else Wilson."""
    try:
        from scipy.stats import beta
    except ImportError:
        lo, hi = wilson_interval(k, n, confidence)
        return lo, hi, "Wilson"
    a = 1 - confidence
    lo = 0.0 if k == 0 else float(beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a / 2, k + 1, n - k))
    return lo, hi, "Clopper-Pearson"


# --- the calibration --------------------------------------------------------------------------

def _sig(x: float, digits: int = 3) -> float:
    return float(f"{x:.{digits}g}") if x else 0.0


@dataclass
class SlotsCalibration:
    snapshots: list[Snapshot]
    confidence: float
    owned_gpu_snapshots: int
    busy_gpu_snapshots: int
    busy_fraction: float
    ci: tuple[float, float]
    method: str

    @property
    def sources(self) -> list[str]:
        return [Path(s.source).name for s in self.snapshots]

    @property
    def owner_busy_fraction(self) -> float:
        """The value written: 3 significant figures, at most the scenario's bound."""
        return min(_sig(self.busy_fraction), OWNER_BUSY_MAX)

    @property
    def warnings(self) -> list[str]:
        out = []
        for s in self.snapshots:
            if s.owned_gpus == 0:
                out.append(f"{s.source}: no GPU on a machine with a backfill slot; this snapshot "
                           "adds nothing")
            if s.clipped:
                out.append(f"{s.source}: {len(s.clipped)} machine(s) show more GPUs in claimed "
                           f"slots than they have (counted as all busy): "
                           f"{', '.join(s.clipped[:5])}")
        if self.owner_busy_fraction < _sig(self.busy_fraction):
            out.append(f"owner_busy_fraction measured {self.busy_fraction:.4g}; written as "
                       f"{OWNER_BUSY_MAX}, the largest a scenario accepts")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": [s.source for s in self.snapshots],
            "snapshots": [s.to_dict() for s in self.snapshots],
            "owned_machines": sum(s.owned_machines for s in self.snapshots),
            "owned_gpu_snapshots": self.owned_gpu_snapshots,
            "busy_gpu_snapshots": self.busy_gpu_snapshots,
            "busy_fraction": self.busy_fraction,
            "owner_busy_fraction": self.owner_busy_fraction,
            "confidence": self.confidence,
            "ci": list(self.ci),
            "method": (f"GPUs in claimed primary slots / GPUs of machines with a backfill slot, "
                       f"pooled over snapshots; {self.method} binomial interval over "
                       "GPU-snapshots (optimistic: snapshots are not independent)"),
            "warnings": self.warnings,
            "summary": self.describe(),
        }

    def interval_text(self) -> str:
        lo, hi = self.ci
        return (f"{self.busy_gpu_snapshots} of {self.owned_gpu_snapshots} GPU-snapshots busy "
                f"({len(self.snapshots)} snapshot(s), "
                f"{sum(s.owned_machines for s in self.snapshots)} owned machine-snapshots); "
                f"{self.confidence:.0%} CI [{lo:.3g}, {hi:.3g}] ({self.method})")

    def comments(self) -> list[str]:
        return [
            "owner_busy_fraction: the share of owned GPUs (GPUs of machines that advertise a "
            "slot with BackfillSlot == true) busy with their owners' jobs",
            "  = GPUs in Claimed primary (non-backfill) dynamic or static slots / the machines' "
            "GPUs (TotalSlotGPUs of the primary slots,",
            "  else TotalGPUs, DetectedGPUs), pooled over snapshots; "
            "source: condor_status snapshots " + ", ".join(self.sources),
            f"  {self.confidence:.0%} interval: {self.method} over GPU-snapshots; the same "
            "GPUs are seen in every snapshot, so they are not independent",
            "  and the interval is optimistic (too narrow)",
        ]

    def body(self) -> str:
        return (f"# source: advisor logs --slots {', '.join(self.sources)}: "
                f"{self.interval_text()}\n"
                f"owner_busy_fraction: {self.owner_busy_fraction}\n")

    def describe(self) -> str:
        """One line for people."""
        return f"Owners' busy fraction: {self.busy_fraction:.3g}: {self.interval_text()}."


def calibrate_slots(paths: Sequence[str | Path], confidence: float = 0.95) -> SlotsCalibration:
    """Read the snapshots and pool their counts; InputError when no GPU is owned."""
    files = list(dict.fromkeys(str(p) for p in paths))
    snaps = [count_snapshot(p, *read_snapshot(p)) for p in files]
    owned = sum(s.owned_gpus for s in snaps)
    busy = sum(s.busy_gpus for s in snaps)
    shown = " ".join(files)
    if not any(s.owned_machines or s.backfill_machines_without_gpus for s in snaps):
        raise InputError(FIELD, shown, "no machine in them advertises a backfill slot.",
                         NO_BACKFILL_FIX)
    if owned == 0:
        raise InputError(FIELD, shown, "the machines with a backfill slot show no GPU (0 owned "
                         "GPUs).", NO_BACKFILL_FIX)
    lo, hi, method = binomial_interval(busy, owned, confidence)
    return SlotsCalibration(snapshots=snaps, confidence=confidence, owned_gpu_snapshots=owned,
                            busy_gpu_snapshots=busy, busy_fraction=busy / owned, ci=(lo, hi),
                            method=method)


# --- the fragment -----------------------------------------------------------------------------

def fragment_text(slots: SlotsCalibration, logs: Any = None) -> str:
    """The scenario fragment: the event logs' part (`advisor.logs.calibrate.Calibration`,
    when given) followed by `owner_busy_fraction` with its comments."""
    if logs is None:
        head = ["Calibration fragment written by `advisor logs --emit-calibration --slots` "
                "(scenario keys: docs/DESIGN.md §4.3)."]
        before = ""
    else:
        head = logs.comments()
        if logs.fragment():  # its YAML without the leading comment lines
            body = logs.to_yaml().splitlines(keepends=True)
            while body and body[0].startswith("#"):
                body.pop(0)
            before = "".join(body)
        else:
            before = ""
    lines = "".join(f"# {line}\n" for line in head + slots.comments())
    return lines + before + slots.body()


def write_fragment(slots: SlotsCalibration, path: str | Path, logs: Any = None) -> Path:
    return atomic_write(path, fragment_text(slots, logs))
