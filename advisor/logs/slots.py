"""Owners' use of their own GPUs, measured from snapshots of a pool's slots.

A job's event log does not show what the owners of a GPU do, but the pool's slot ClassAds do.
Each snapshot is the output of `condor_status -json` (a JSON list of slot ads) or
`condor_status -long` (ads in the old text format, separated by blank lines); several
snapshots taken at different times are pooled.

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

Attribute names are matched without regard to case, as ClassAds do (`GPUs` and `Gpus` are the
same attribute). The bindings (`classad2`) parse and evaluate the values of the old text
format, but their reader silently drops a line it cannot parse (or the junk after a value) and
returns no ad for text that is not ClassAds at all, so the file is split into ads and lines
here and each value used is parsed whole by `classad2.ExprTree`. Any fault, a file that is not
a snapshot, an attribute of the wrong type, is an InputError naming `--slots`, the file and the
fix (exit 2).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import classad2

from advisor.errors import InputError
from advisor.output import atomic_write
from simulator.files import read_text

FIELD = "--slots"
MAX_SNAPSHOT_BYTES = 200 * 1000**2  # a whole pool's -long output is tens of MB
MAX_GPUS = 1024                     # per slot or machine: more is not a GPU count
OWNER_BUSY_MAX = 0.99               # the largest owner_busy_fraction a scenario accepts

MACHINE, NAME, STATE = "Machine", "Name", "State"
BACKFILL, PARTITIONABLE, DYNAMIC, SLOT_TYPE = ("BackfillSlot", "PartitionableSlot",
                                               "DynamicSlot", "SlotType")
GPUS, TOTAL_SLOT_GPUS, TOTAL_GPUS, DETECTED_GPUS = ("GPUs", "TotalSlotGPUs", "TotalGPUs",
                                                    "DetectedGPUs")
_ATTRS = (MACHINE, NAME, STATE, BACKFILL, PARTITIONABLE, DYNAMIC, SLOT_TYPE, GPUS,
          TOTAL_SLOT_GPUS, TOTAL_GPUS, DETECTED_GPUS)
_CANON = {a.lower(): a for a in _ATTRS}

TAKE_FIX = ("give the output of `condor_status -json` or `condor_status -long` as written, e.g. "
            "condor_status -json -attributes " + ",".join(_ATTRS) + " > slots.json")
NO_BACKFILL_FIX = ("these snapshots show no backfill slot (BackfillSlot == true); take them on a "
                   "pool with owned GPUs")

_ATTR_LINE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*\S")
_EVENT_LOG = re.compile(r"\d{3} \(\d+\.\d+\.\d+\)")
_JSON_EXPR = re.compile(r"/Expr\((.*)\)/", re.DOTALL)
_WS = re.compile(r"\s*")


def _fail(path: str, problem: str, fix: str = TAKE_FIX) -> InputError:
    return InputError(FIELD, path, problem, fix)


@dataclass(frozen=True)
class Slot:
    """What one slot ad says that matters here."""

    machine: str
    name: str | None
    state: str | None
    backfill: bool
    partitionable: bool
    dynamic: bool
    gpus: int | None
    total_slot_gpus: int | None
    total_gpus: int | None
    detected_gpus: int | None


# --- reading ----------------------------------------------------------------------------------

def _where(index: int, values: dict[str, Any]) -> str:
    name = values.get(NAME)
    return f"ad {index}" + (f" ({name})" if isinstance(name, str) else "")


def _count(path: str, where: str, attr: str, value: Any) -> int | None:
    if value is None or value is classad2.Value.Undefined:
        return None
    if attr == DETECTED_GPUS and isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            value = int(text)
        else:  # the ids the discovery found: "CUDA0, CUDA1" or "GPU-1a2b..., GPU-3c4d..."
            value = len([x for x in text.split(",") if x.strip()])
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_GPUS:
        raise _fail(path, f"{where}: {attr} = {value!r} is not a number of GPUs (a whole number "
                    f"from 0 to {MAX_GPUS}).")
    return value


def _flag(path: str, where: str, attr: str, value: Any) -> bool:
    if value is None or value is classad2.Value.Undefined:
        return False
    if not isinstance(value, bool):
        raise _fail(path, f"{where}: {attr} = {value!r} is not true or false.")
    return value


def _text(path: str, where: str, attr: str, value: Any) -> str | None:
    if value is None or value is classad2.Value.Undefined:
        return None
    if not isinstance(value, str):
        raise _fail(path, f"{where}: {attr} = {value!r} is not a string.")
    return value


def _slot(path: str, index: int, values: dict[str, Any]) -> Slot | None:
    """The Slot of one ad's values (canonical names); None for an ad without a Machine."""
    where = _where(index, values)
    machine = _text(path, where, MACHINE, values.get(MACHINE))
    if not machine:
        return None
    slot_type = _text(path, where, SLOT_TYPE, values.get(SLOT_TYPE))
    return Slot(
        machine=machine,
        name=_text(path, where, NAME, values.get(NAME)),
        state=_text(path, where, STATE, values.get(STATE)),
        backfill=_flag(path, where, BACKFILL, values.get(BACKFILL)),
        partitionable=(_flag(path, where, PARTITIONABLE, values.get(PARTITIONABLE))
                       or slot_type == "Partitionable"),
        dynamic=_flag(path, where, DYNAMIC, values.get(DYNAMIC)) or slot_type == "Dynamic",
        gpus=_count(path, where, GPUS, values.get(GPUS)),
        total_slot_gpus=_count(path, where, TOTAL_SLOT_GPUS, values.get(TOTAL_SLOT_GPUS)),
        total_gpus=_count(path, where, TOTAL_GPUS, values.get(TOTAL_GPUS)),
        detected_gpus=_count(path, where, DETECTED_GPUS, values.get(DETECTED_GPUS)))


def _json_values(path: str, index: int, ad: Any) -> dict[str, Any]:
    if not isinstance(ad, dict):
        raise _fail(path, f"ad {index} is a JSON {type(ad).__name__}, not an object (a ClassAd).")
    values = {_CANON[k.lower()]: v for k, v in ad.items() if k.lower() in _CANON}
    exprs = [k for k, v in values.items() if isinstance(v, str) and _JSON_EXPR.fullmatch(v)]
    if exprs:  # condor_status -json writes expressions as "\/Expr(...)\/": evaluate them
        full = classad2.ClassAd()
        for k, v in ad.items():
            m = _JSON_EXPR.fullmatch(v) if isinstance(v, str) else None
            try:
                full[k] = classad2.ExprTree(m.group(1)) if m else v
            except Exception:  # noqa: BLE001 - a value the bindings cannot hold: not needed
                if k.lower() in _CANON:
                    raise _fail(path, f"{_where(index, values)}: {k} = {v!r} is not a ClassAd "
                                "value.") from None
        for k in exprs:
            values[k] = full.eval(k)
    return values


def _json_ads(path: str, text: str) -> Iterator[dict[str, Any]]:
    """The ads of a JSON list, decoded one at a time (a big snapshot is never held twice)."""
    decoder = json.JSONDecoder()
    pos = _WS.match(text, 0).end()  # type: ignore[union-attr]
    if text.startswith("{", pos):
        try:
            yield json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise _fail(path, f"is not valid JSON ({exc}).") from None
        return
    pos += 1  # the '['
    index = 0
    while True:
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if text.startswith("]", pos):
            break
        try:
            ad, pos = decoder.raw_decode(text, pos)
        except ValueError as exc:
            raise _fail(path, f"is not valid JSON ({exc}).") from None
        except RecursionError:
            raise _fail(path, f"ad {index} nests too deeply to be a slot ClassAd.") from None
        index += 1
        yield ad
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if text.startswith(",", pos):
            pos += 1
        elif not text.startswith("]", pos):
            line = text.count("\n", 0, pos) + 1
            raise _fail(path, f"is not valid JSON (expected ',' or ']' at line {line}).")
    if _WS.match(text, pos + 1).end() != len(text):  # type: ignore[union-attr]
        line = text.count("\n", 0, pos + 1) + 1
        raise _fail(path, f"has more after the closing ']' of its list (line {line}).")


def _long_blocks(path: str, text: str) -> Iterator[tuple[int, list[tuple[int, str]]]]:
    """(first line number, [(line number, line)]) of each blank-line separated ad."""
    block: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if block:
                yield block[0][0], block
                block = []
            continue
        if not _ATTR_LINE.match(line):
            raise _fail(path, f"line {number} is not a ClassAd attribute (Name = value): "
                        f"{line.strip()[:60]!r}.")
        block.append((number, line))
    if block:
        yield block[0][0], block


def _parse_ad(path: str, lines: list[tuple[int, str]]) -> classad2.ClassAd:
    """The ad of these lines, each value parsed whole by the bindings (their old-format reader
    drops a bad line, or the junk after a value, without a word)."""
    ad = classad2.ClassAd()
    first: dict[str, int] = {}
    for number, line in lines:
        name, _, value = line.partition("=")
        name = name.strip()
        if name.lower() in first:
            raise _fail(path, f"line {number} sets {name} again (first on line "
                        f"{first[name.lower()]}): the second value would silently win.")
        first[name.lower()] = number
        try:
            ad[name] = classad2.ExprTree(value.strip())
        except Exception:  # noqa: BLE001 - classad2.ClassAdException, or a value it cannot hold
            raise _fail(path, f"line {number} is not a valid ClassAd attribute: "
                        f"{line.strip()[:60]!r}.") from None
    return ad


def _long_values(path: str, first: int, lines: list[tuple[int, str]]) -> dict[str, Any]:
    wanted = [(n, ln) for n, ln in lines
              if _ATTR_LINE.match(ln).group(1).lower() in _CANON]  # type: ignore[union-attr]
    if not wanted:
        return {}
    ad = _parse_ad(path, wanted)
    values = {_CANON[k.lower()]: ad.eval(k) for k in ad.keys()}
    if any(v is classad2.Value.Undefined or v is classad2.Value.Error for v in values.values()):
        full = _parse_ad(path, lines)  # an expression that refers to other attributes
        values = {_CANON[k.lower()]: full.eval(k) for k in full.keys() if k.lower() in _CANON}
    for k, v in values.items():
        if v is classad2.Value.Error:
            raise _fail(path, f"ad from line {first}: {k} evaluates to an error.")
    return values


def read_snapshot(path: str | Path) -> tuple[str, list[Slot], dict[str, int]]:
    """(format, slots, counts) of one snapshot; counts: ads read, ads without a Machine,
    duplicate slot names (one of each kept)."""
    p = str(path)
    try:
        size = os.stat(p).st_size
    except OSError:
        size = 0  # read_text names the problem
    if size > MAX_SNAPSHOT_BYTES:
        raise _fail(p, f"is {size / 1000**2:.0f} MB, more than the {MAX_SNAPSHOT_BYTES // 1000**2} "
                    "MB a snapshot may be.", "take it with only the attributes used: " + TAKE_FIX)
    text = read_text(p, FIELD, TAKE_FIX, max_bytes=MAX_SNAPSHOT_BYTES)
    head = text.lstrip()
    if not head:
        raise _fail(p, "is empty: no slot ClassAd in it.")
    if _EVENT_LOG.match(head):
        raise _fail(p, "is an HTCondor job event log, not a snapshot of slots.",
                    "name event logs as LOGFILE before --slots (every word after --slots is "
                    "read as a snapshot), or end the list of snapshots with --.")
    if head[0] in "[{":
        fmt = "json"
        values = (_json_values(p, i, ad) for i, ad in enumerate(_json_ads(p, text)))
    elif _ATTR_LINE.match(head):
        fmt = "long"
        values = (_long_values(p, first, lines) for first, lines in _long_blocks(p, text))
    else:
        raise _fail(p, f"is neither JSON nor ClassAds in the -long text format (it begins "
                    f"{head[:30]!r}).")
    slots: list[Slot] = []
    seen: set[str] = set()
    counts = {"ads": 0, "without_machine": 0, "duplicates": 0}
    for i, v in enumerate(values):
        counts["ads"] += 1
        slot = _slot(p, i, v)
        if slot is None:
            counts["without_machine"] += 1
            continue
        if slot.name is not None:
            if slot.name in seen:
                counts["duplicates"] += 1
                continue
            seen.add(slot.name)
        slots.append(slot)
    if not slots:
        raise _fail(p, f"holds no slot ClassAd ({counts['ads']} ads, none with a Machine "
                    "attribute).")
    return fmt, slots, counts


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
