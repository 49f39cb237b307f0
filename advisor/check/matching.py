"""Which GPU slots of the pool a submit file's request can match, clause by clause: the offline
analogue of `condor_q -better-analyze`, against the pool file rather than a live collector.

The pool model gives each slot class one GPU with its share of the server's CPUs, memory and
disk; a job asking for g GPUs gets g shares and needs g GPUs on one server.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from advisor.check.commands import KNOWN_COMMANDS
from advisor.check.submitfile import SubmitFile
from simulator.pool import Pool, SlotClass
from simulator.request import BARE_UNIT_MB, Request, gib_to_mib, parse_quantity

_LEGACY_CAP = re.compile(r"(?i)\b(?:TARGET\.)?CUDACapability\s*(>=|>)\s*([0-9.]+)")
_LEGACY_MEM = re.compile(r"(?i)\b(?:TARGET\.)?CUDAGlobalMemoryMb\s*(>=|>)\s*([0-9.]+)")


@dataclass(frozen=True)
class JobRequest:
    """What a submit file asks for: the one `Request`, as far as the file states it.

    Not a second request type, a view of the file: a submit file may leave a command out
    (HTCondor then applies the pool's default) or give an expression where a number goes, and
    `check` speaks only of what the file states. So `stated` names the Request fields the file
    gives a number for (request_cpus and request_gpus always have one: HTCondor's defaults, 1
    and 0); the other fields hold Request's defaults and are not read. Beside the request, a
    file can say what a Request cannot: old-style floors inside `requirements`, and a
    misspelt command read as request_gpus.
    """

    request: Request
    stated: frozenset[str]
    legacy_min_capability: float | None = None
    legacy_min_gpu_memory_mb: float | None = None
    gpus_assumed_from: str | None = None   # a misspelled command (request_gpu) read as request_gpus

    def given(self, name: str) -> Any:
        """The Request field `name` as the file states it; None when it does not."""
        return getattr(self.request, name) if name in self.stated else None

    @property
    def gpus(self) -> int:
        return self.request.request_gpus

    @property
    def is_resumable(self) -> bool:
        return self.request.is_resumable


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        x = float(text.strip().strip('"'))
    except ValueError:
        return None
    return x if math.isfinite(x) else None  # NaN, inf: reported by the `values` rule


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
    values: dict[str, Any] = {"request_gpus": int(gpus) if gpus is not None else 0,
                              "is_resumable": (sub.value("+is_resumable") or "").strip().lower() == "true"}
    cpus = _number(sub.value("request_cpus"))
    if cpus is not None or not sub.has("request_cpus"):
        values["request_cpus"] = int(cpus) if cpus is not None else 1
    for command, name in (("request_memory", "request_memory_mb"), ("request_disk", "request_disk_mb"),
                          ("gpus_minimum_memory", "gpus_minimum_memory_mb")):
        q = parse_quantity(sub.value(command) or "", BARE_UNIT_MB[command]) if sub.has(command) else None
        if q is not None and q.mb is not None:
            values[name] = q.mb
    for name in ("gpus_minimum_capability", "gpus_maximum_capability"):
        x = _number(sub.value(name))
        if x is not None:
            values[name] = x
    requirements = sub.value("requirements") or ""
    cap = _LEGACY_CAP.search(requirements)
    lmem = _LEGACY_MEM.search(requirements)
    return JobRequest(
        request=Request(**values), stated=frozenset(values),
        legacy_min_capability=float(cap.group(2)) if cap else None,
        legacy_min_gpu_memory_mb=float(lmem.group(2)) if lmem else None,
        gpus_assumed_from=assumed if gpus is not None else None,
    )


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
                  lambda s: pool.gpus_per_server(s) >= req.gpus)]

    def at_least(command: str, text: str, attr: Callable[[SlotClass], float], floor: float,
                 line_of: str | None = None) -> None:
        out.append(Clause(command, sub.line(line_of or command), text,
                          lambda s: attr(s) >= floor - 1e-9))

    floor = req.given("gpus_minimum_capability")
    if floor is not None:
        at_least("gpus_minimum_capability", f"capability >= {floor:g}", lambda s: s.capability, floor)
    ceiling = req.given("gpus_maximum_capability")
    if ceiling is not None:
        out.append(Clause("gpus_maximum_capability", sub.line("gpus_maximum_capability"),
                          f"capability <= {ceiling:g}", lambda s: s.capability <= ceiling + 1e-9))
    gpu_memory = req.given("gpus_minimum_memory_mb")
    if gpu_memory is not None:
        at_least("gpus_minimum_memory", f"GPU memory >= {gpu_memory:.0f} MB",
                 lambda s: s.gpu_memory_mb, gpu_memory)
    if req.legacy_min_capability is not None:
        at_least("requirements", f"CUDACapability >= {req.legacy_min_capability:g}",
                 lambda s: s.capability, req.legacy_min_capability)
    if req.legacy_min_gpu_memory_mb is not None:
        at_least("requirements", f"CUDAGlobalMemoryMb >= {req.legacy_min_gpu_memory_mb:.0f}",
                 lambda s: s.gpu_memory_mb, req.legacy_min_gpu_memory_mb)
    cpus = req.given("request_cpus")
    if cpus is not None:
        at_least("request_cpus", f"request_cpus = {cpus} (CPUs per GPU x {g} in the pool model)",
                 lambda s: s.cpus * g, cpus)
    memory = req.given("request_memory_mb")
    if memory is not None:
        at_least("request_memory", f"request_memory = {memory:.0f} MB (host memory per GPU x {g})",
                 lambda s: gib_to_mib(s.memory_gb) * g, memory)
    disk = req.given("request_disk_mb")
    if disk is not None:
        at_least("request_disk", f"request_disk = {disk:.0f} MB (disk per GPU x {g})",
                 lambda s: gib_to_mib(s.disk_gb) * g, disk)
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
