"""Reading snapshots of a pool's slots for `advisor logs --slots` (`advisor.logs.slots`).

A snapshot is the output of `condor_status -json` (a JSON list of slot ads) or
`condor_status -long` (ads in the old text format, separated by blank lines); `read_snapshot`
gives the `Slot`s of one, with the counts of ads read, ads without a Machine and duplicate
slot names.

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
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import classad2

from advisor.errors import InputError
from simulator.files import read_text

FIELD = "--slots"
MAX_SNAPSHOT_BYTES = 200 * 1000**2  # a whole pool's -long output is tens of MB
MAX_GPUS = 1024                     # per slot or machine: more is not a GPU count

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
