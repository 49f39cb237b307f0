"""Which GPU slots of the pool a submit file's request can match, clause by clause: the offline
analogue of `condor_q -better-analyze`, against the pool file rather than a live collector.

The pool model gives each slot class one GPU with its share of the server's CPUs, memory and
disk; a job asking for g GPUs gets g shares and needs g GPUs on one server.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from advisor.check.commands import KNOWN_COMMANDS
from advisor.check.submitfile import SubmitFile, parse_quantity
from simulator.pool import Pool, SlotClass

_LEGACY_CAP = re.compile(r"(?i)\b(?:TARGET\.)?CUDACapability\s*(>=|>)\s*([0-9.]+)")
_LEGACY_MEM = re.compile(r"(?i)\b(?:TARGET\.)?CUDAGlobalMemoryMb\s*(>=|>)\s*([0-9.]+)")


@dataclass(frozen=True)
class JobRequest:
    """What the submit file asks for, in plain units (None: not set or not a number)."""

    gpus: int
    cpus: int | None
    memory_mb: float | None
    disk_mb: float | None
    min_capability: float | None
    max_capability: float | None
    min_gpu_memory_mb: float | None
    legacy_min_capability: float | None
    legacy_min_gpu_memory_mb: float | None
    is_resumable: bool
    gpus_assumed_from: str | None = None   # a misspelled command (request_gpu) read as request_gpus


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text.strip().strip('"'))
    except ValueError:
        return None


def job_request(sub: SubmitFile) -> JobRequest:
    gpus = _number(sub.value("request_gpus"))
    assumed = None
    if gpus is None:
        # `request_gpu = 1` means no GPU to HTCondor, but the researcher meant one: analyse that.
        for a in sub.assignments:
            key = a.key.lower()
            if (a.before_queue and not a.is_attribute and key not in KNOWN_COMMANDS
                    and difflib.get_close_matches(key, ["request_gpus"], n=1, cutoff=0.8)):
                gpus, assumed = _number(a.value), a.key
    cpus = _number(sub.value("request_cpus"))
    mem = parse_quantity(sub.value("request_memory") or "", 1.0) if sub.has("request_memory") else None
    disk = parse_quantity(sub.value("request_disk") or "", 1 / 1024) if sub.has("request_disk") else None
    gmem = (parse_quantity(sub.value("gpus_minimum_memory") or "", 1.0)
            if sub.has("gpus_minimum_memory") else None)
    requirements = sub.value("requirements") or ""
    cap = _LEGACY_CAP.search(requirements)
    lmem = _LEGACY_MEM.search(requirements)
    resumable = (sub.value("+is_resumable") or "").strip().lower() == "true"
    return JobRequest(
        gpus=int(gpus) if gpus is not None else 0,
        cpus=int(cpus) if cpus is not None else (1 if not sub.has("request_cpus") else None),
        memory_mb=mem.mb if mem else None,
        disk_mb=disk.mb if disk else None,
        min_capability=_number(sub.value("gpus_minimum_capability")),
        max_capability=_number(sub.value("gpus_maximum_capability")),
        min_gpu_memory_mb=gmem.mb if gmem else None,
        legacy_min_capability=float(cap.group(2)) if cap else None,
        legacy_min_gpu_memory_mb=float(lmem.group(2)) if lmem else None,
        is_resumable=resumable,
        gpus_assumed_from=assumed if gpus is not None else None,
    )


DEFAULT_GPUS_PER_SERVER = 8


def gpus_per_server(slot: SlotClass, pool: Pool | None = None) -> int:
    """GPUs on one server of this class. Where the pool file gives no server count, assume the
    largest server the pool file does describe (or 8), never more than the class has."""
    if slot.servers:
        return slot.count // slot.servers
    known = [s.count // s.servers for s in (pool.slots if pool else ()) if s.servers]
    return min(slot.count, max(known, default=DEFAULT_GPUS_PER_SERVER))


@dataclass(frozen=True)
class Clause:
    command: str
    line: int | None
    text: str
    ok: Callable[[SlotClass], bool]


def clauses(sub: SubmitFile, req: JobRequest, pool: Pool) -> list[Clause]:
    g = max(req.gpus, 1)
    gpus_line = sub.line("request_gpus") or (sub.line(req.gpus_assumed_from) if req.gpus_assumed_from else None)
    named = f"{req.gpus_assumed_from} = {req.gpus}, read as request_gpus" if req.gpus_assumed_from else f"request_gpus = {req.gpus}"
    out = [Clause("request_gpus", gpus_line, f"{named} (GPUs on one server)",
                  lambda s: gpus_per_server(s, pool) >= req.gpus)]

    def at_least(command: str, text: str, attr: Callable[[SlotClass], float], floor: float,
                 line_of: str | None = None) -> None:
        out.append(Clause(command, sub.line(line_of or command), text,
                          lambda s: attr(s) >= floor - 1e-9))

    if req.min_capability is not None:
        at_least("gpus_minimum_capability", f"capability >= {req.min_capability:g}",
                 lambda s: s.capability, req.min_capability)
    if req.max_capability is not None:
        ceiling = req.max_capability
        out.append(Clause("gpus_maximum_capability", sub.line("gpus_maximum_capability"),
                          f"capability <= {ceiling:g}", lambda s: s.capability <= ceiling + 1e-9))
    if req.min_gpu_memory_mb is not None:
        at_least("gpus_minimum_memory", f"GPU memory >= {req.min_gpu_memory_mb:.0f} MB",
                 lambda s: s.gpu_memory_mb, req.min_gpu_memory_mb)
    if req.legacy_min_capability is not None:
        at_least("requirements", f"CUDACapability >= {req.legacy_min_capability:g}",
                 lambda s: s.capability, req.legacy_min_capability)
    if req.legacy_min_gpu_memory_mb is not None:
        at_least("requirements", f"CUDAGlobalMemoryMb >= {req.legacy_min_gpu_memory_mb:.0f}",
                 lambda s: s.gpu_memory_mb, req.legacy_min_gpu_memory_mb)
    if req.cpus is not None:
        at_least("request_cpus", f"request_cpus = {req.cpus} (CPUs per GPU x {g} in the pool model)",
                 lambda s: s.cpus * g, req.cpus)
    if req.memory_mb is not None:
        at_least("request_memory", f"request_memory = {req.memory_mb:.0f} MB (host memory per GPU x {g})",
                 lambda s: s.memory_gb * 1024 * g, req.memory_mb)
    if req.disk_mb is not None:
        at_least("request_disk", f"request_disk = {req.disk_mb:.0f} MB (disk per GPU x {g})",
                 lambda s: s.disk_gb * 1024 * g, req.disk_mb)
    out.append(Clause("+is_resumable", sub.line("+is_resumable"),
                      "owned GPUs only as backfill (+is_resumable = true)",
                      lambda s: req.is_resumable or not s.backfill_only))
    return out


def analyze(sub: SubmitFile, pool: Pool) -> dict[str, Any]:
    """Per clause: how many of the pool's GPUs (and which slot classes) it excludes on its own,
    and how many GPUs match all clauses together."""
    req = job_request(sub)
    total = pool.total_gpus
    if req.gpus <= 0:
        return {"gpus_requested": 0, "pool_gpus": total, "matching_gpus": None, "clauses": [],
                "note": "no request_gpus: a CPU job; GPU slots were not analysed"}
    cl = clauses(sub, req, pool)
    rows = []
    for c in cl:
        excluded = [s for s in pool.slots if not c.ok(s)]
        rows.append({"command": c.command, "line": c.line, "clause": c.text,
                     "excludes_gpus": sum(s.count for s in excluded),
                     "excludes_slot_classes": [s.label for s in excluded],
                     "matches_gpus": total - sum(s.count for s in excluded)})
    matching = [s for s in pool.slots if all(c.ok(s) for c in cl)]
    return {
        "gpus_requested": req.gpus, "pool_gpus": total,
        "gpus_assumed_from": req.gpus_assumed_from,
        "matching_gpus": sum(s.count for s in matching),
        "matching_slot_classes": [s.label for s in matching],
        "clauses": rows,
        "model": "one GPU per slot with its share of the server's CPUs, memory and disk "
                 "(pool file); a g-GPU job needs g GPUs on one server and gets g shares; servers "
                 "of unknown size are assumed as large as the largest the pool file describes",
    }
