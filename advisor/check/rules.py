"""The rules `advisor check` applies. Each takes the parsed file and the pool and yields findings.

This module holds the registry (`Context`, `rule`, `run_rules`) and the rules on the file as
written: is each line what its author thinks (a submit command, a pool attribute, set once, a
size in the unit meant, a request that is stated, not a legacy spelling). The rules on the job in
its pool (matching, tiers, checkpointing, secrets and data) are in `advisor.check.pool_rules`,
those on the values themselves in `advisor.check.values`; both register here, in that order.

Facts behind them (docs/DOMAIN.md §1-§4): units of request_memory (MB) and request_disk (KiB) without a
suffix; `gpus_*` ignored without `request_gpus`; a second `requirements` replaces the first;
`+is_resumable` (ClassAd names ignore case, but `IsResumable` is another attribute);
`+WantGPULab` no longer required; legacy `CUDACapability`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from advisor.check.commands import (
    CRITICAL_COMMANDS,
    KNOWN_COMMANDS,
    KNOWN_PREFIXES,
    OTHER_KNOWN_ATTRIBUTES,
    POOL_ATTRIBUTES,
    STANDARD_RESOURCES,
)
from advisor.check.findings import Finding
from advisor.check.matching import JobRequest, analyze, job_request
from advisor.check.secrets import redact
from advisor.check.submitfile import Assignment, SubmitFile, parse_quantity
from simulator.pool import Pool, Tier

DEFAULT_BACKFILL_HOURS = 6.0      # CHTC gpu-jobs.md: backfill suits jobs under 4-6 h
TIER_ATTRIBUTES = ("GPUJobLength", "JobDurationCategory")
# request_<x> spellings that mean a standard resource but are not close in letters.
REQUEST_ALIASES = {"request_ram": "request_memory", "request_mem": "request_memory",
                   "request_cores": "request_cpus", "request_ncpus": "request_cpus",
                   "request_ngpus": "request_gpus", "request_gpu_count": "request_gpus",
                   "request_storage": "request_disk", "request_scratch": "request_disk"}


@dataclass
class Context:
    sub: SubmitFile
    pool: Pool
    req: JobRequest
    analysis: dict[str, Any]
    tier: Tier | None = None           # the tier the job will get (named or the default)
    tier_line: int | None = None

    @property
    def checkpoints(self) -> bool:
        return self.sub.has("checkpoint_exit_code")

    @property
    def backfill_hours(self) -> float:
        value = self.pool.limits.get("backfill_suited_below_hours", DEFAULT_BACKFILL_HOURS)
        return float(value) if isinstance(value, (int, float)) else DEFAULT_BACKFILL_HOURS

    @property
    def preemptible(self) -> bool:
        """Every GPU slot of the pool may be evicted (the OSPool)."""
        return all(s.time_to_eviction is not None for s in self.pool.slots)


Rule = Callable[[Context], Iterator[Finding]]
RULES: list[Rule] = []
# The modules that register rules, in the order their findings are reported (whichever is imported first).
_MODULES = (__name__, "advisor.check.pool_rules", "advisor.check.values")


def rule(fn: Rule) -> Rule:
    RULES.append(fn)
    RULES.sort(key=lambda r: _MODULES.index(r.__module__))  # stable: definition order within a module
    return fn


def _f(code: str, severity: str, line: int | None, command: str, message: str, fix: str,
       suggestions: tuple[str, ...] = ()) -> Finding:
    return Finding(code, severity, line, command, redact(message), redact(fix), suggestions)


def _close(name: str, candidates: tuple[str, ...] | frozenset[str], cutoff: float = 0.8) -> list[str]:
    return difflib.get_close_matches(name.lower(), sorted(c.lower() for c in candidates), n=3, cutoff=cutoff)


# --- the file as a whole ------------------------------------------------------------------

@rule
def structure(ctx: Context) -> Iterator[Finding]:
    if not ctx.sub.queue_lines:
        yield _f("no-queue", "error", None, "queue",
                 "the file has no queue statement, so condor_submit submits no job.",
                 "end the file with `queue` (one job) or `queue N`.")
    if not ctx.sub.has("executable"):
        yield _f("no-executable", "error", None, "executable",
                 "no executable is named; condor_submit refuses the file.",
                 "add `executable = run.sh` (the script the job runs).")


@rule
def unknown_commands(ctx: Context) -> Iterator[Finding]:
    used = ctx.sub.macros_used
    for a in ctx.sub.assignments:
        if a.is_attribute:
            continue
        key = a.key.lower()
        if key in KNOWN_COMMANDS or key.startswith(KNOWN_PREFIXES):
            continue
        if key.startswith("request_") and key not in STANDARD_RESOURCES:
            alias = REQUEST_ALIASES.get(key)
            near = [alias] if alias else _close(key, STANDARD_RESOURCES, cutoff=0.8)
            if near:
                yield _f("misspelled-command", "error", a.line, a.key,
                         f"`{a.key}` is not `{near[0]}`: condor_submit takes request_<name> as a "
                         f"request for a custom machine resource named `{key[8:]}`, which pool "
                         f"{ctx.pool.name!r} does not describe, and {near[0]} stays at its default"
                         + (" (no GPU)." if near[0] == "request_gpus" else "."),
                         f"write `{near[0]} = {a.value}`.", tuple(near))
            else:
                yield _f("custom-resource", "warning", a.line, a.key,
                         f"`{a.key}` asks for a custom machine resource `{key[8:]}` that the pool "
                         "file does not describe; only slots advertising it can match.",
                         "remove it unless your pool's administrators defined that resource.")
            continue
        if key in used:
            continue  # a macro of the user's own, used as $(name)
        near = _close(key, KNOWN_COMMANDS)
        if near:
            severity = "error" if near[0] in CRITICAL_COMMANDS else "warning"
            yield _f("misspelled-command", severity, a.line, a.key,
                     f"`{a.key}` is not a submit command; condor_submit keeps it as an unused macro "
                     f"and silently ignores it (did you mean `{near[0]}`?).",
                     f"write `{near[0]} = {a.value}`.", tuple(near))
        else:
            yield _f("unknown-command", "info", a.line, a.key,
                     f"`{a.key}` is not a submit command and is never used as $({a.key}); "
                     "condor_submit ignores it.",
                     f"remove it, or use it as $({a.key}) if it is meant as a macro.")


@rule
def attributes(ctx: Context) -> Iterator[Finding]:
    own_tier = (ctx.pool.tier_attribute or "").lstrip("+")
    for a in ctx.sub.assignments:
        if not a.is_attribute:
            continue
        name = a.attribute
        low = name.lower()
        if low == "is_resumable" and a.value.strip().lower() not in ("true", "false"):
            yield _f("resumable-value", "warning", a.line, a.key,
                     f"+is_resumable = {a.value.strip()} is not the ClassAd boolean true (a quoted "
                     "\"true\" is a string), so the job may not be treated as resumable.",
                     "write `+is_resumable = true` (no quotes).")
            continue
        if low in {p.lower() for p in POOL_ATTRIBUTES}:
            if name in TIER_ATTRIBUTES and own_tier and low != own_tier.lower():
                yield _f("other-pool-attribute", "warning", a.line, a.key,
                         f"+{name} is the length tier of another pool; pool {ctx.pool.name!r} reads "
                         f"{ctx.pool.tier_attribute}, so this line has no effect here.",
                         f"use {ctx.pool.tier_attribute} with one of: "
                         f"{', '.join(t.name for t in ctx.pool.tiers)}.")
            continue
        squashed = low.replace("_", "")
        same_letters = [p for p in POOL_ATTRIBUTES if p.lower().replace("_", "") == squashed]
        if same_letters:
            right = same_letters[0]
            yield _f("misspelled-attribute", "error", a.line, a.key,
                     f"+{name} is a different attribute than +{right}: ClassAd names ignore case but "
                     f"not underscores, so the pool never sees +{right}"
                     + (" and the job does not run as backfill." if right == "is_resumable" else "."),
                     f"write `+{right} = {a.value}`.", (f"+{right}",))
            continue
        if low in {o.lower() for o in OTHER_KNOWN_ATTRIBUTES}:
            continue
        near = difflib.get_close_matches(low, [p.lower() for p in POOL_ATTRIBUTES], n=1, cutoff=0.75)
        if near:
            right = next(p for p in POOL_ATTRIBUTES if p.lower() == near[0])
            yield _f("misspelled-attribute", "error", a.line, a.key,
                     f"+{name} looks like a misspelling of +{right}; the pool reads only +{right}, "
                     "so this line has no effect.",
                     f"write `+{right} = {a.value}`.", (f"+{right}",))


@rule
def duplicates(ctx: Context) -> Iterator[Finding]:
    seen: dict[str, Assignment] = {}
    for a in ctx.sub.assignments:
        if not a.before_queue:
            continue
        first = seen.get(a.norm)
        seen.setdefault(a.norm, a)
        if first is None or first is a:
            continue
        if re.search(r"\$\(\s*" + re.escape(a.key.lstrip("+")) + r"\s*\)", a.value, re.I):
            continue  # `requirements = $(requirements) && ...` extends the earlier value on purpose
        if a.norm == "requirements":
            yield _f("requirements-twice", "error", a.line, a.key,
                     f"requirements is set again here; this line silently replaces the one on line "
                     f"{first.line}, whose conditions are dropped.",
                     "merge both into one line: `requirements = (first) && (second)`.")
        else:
            yield _f("duplicate-command", "warning", a.line, a.key,
                     f"{a.key} is set again here; only this value counts, the one on line "
                     f"{first.line} is ignored.",
                     f"keep one {a.key} line.")


# --- the request ----------------------------------------------------------------------------

@rule
def units(ctx: Context) -> Iterator[Finding]:
    gpu_job = ctx.req.gpus > 0
    a = ctx.sub.last("request_memory")
    if a is not None:
        q = parse_quantity(ctx.sub.value("request_memory") or "", 1.0)
        if q is None:
            yield _f("unknown-unit", "error", a.line, a.key,
                     f"`{a.value}`: HTCondor knows the units K, KB, M, MB, G, GB, T, TB only.",
                     "write e.g. `request_memory = 16GB`.")
        elif q.bare and q.mb is not None:
            number = f"{q.mb:g}"
            if q.mb < 1024:
                yield _f("memory-unit", "error" if gpu_job else "warning", a.line, a.key,
                         f"request_memory = {number} means {number} MB (a bare number is MB), "
                         f"far too little{' for a GPU job' if gpu_job else ''}; GB was probably meant.",
                         f"write the unit: `request_memory = {number}GB` (or `{number}MB` if MB was meant).")
            else:
                yield _f("memory-unit", "info", a.line, a.key,
                         f"request_memory = {number} is read as MB; correct, but the unit is implicit.",
                         f"write `request_memory = {number}MB`.")
    a = ctx.sub.last("request_disk")
    if a is not None:
        q = parse_quantity(ctx.sub.value("request_disk") or "", 1 / 1024)
        if q is None:
            yield _f("unknown-unit", "error", a.line, a.key,
                     f"`{a.value}`: HTCondor knows the units K, KB, M, MB, G, GB, T, TB only.",
                     "write e.g. `request_disk = 20GB`.")
        elif q.bare and q.mb is not None:
            kib = q.mb * 1024
            if q.mb < 1024:
                yield _f("disk-unit", "error", a.line, a.key,
                         f"request_disk = {kib:g} means {kib:g} KiB ({q.mb:.2g} MB): a bare number is "
                         "KiB. The job will be held as soon as its files outgrow that.",
                         f"write the unit: `request_disk = {kib:g}GB` or `{kib:g}MB`.")
            else:
                yield _f("disk-unit", "info", a.line, a.key,
                         f"request_disk = {kib:g} is read as KiB ({q.mb / 1024:.3g} GB); the unit is implicit.",
                         f"write `request_disk = {max(1, round(q.mb / 1024))}GB`.")
    a = ctx.sub.last("gpus_minimum_memory")
    if a is not None:
        q = parse_quantity(ctx.sub.value("gpus_minimum_memory") or "", 1.0)
        if q is None:
            yield _f("unknown-unit", "error", a.line, a.key,
                     f"`{a.value}`: HTCondor knows the units K, KB, M, MB, G, GB, T, TB only.",
                     "write e.g. `gpus_minimum_memory = 20GB`.")
        elif q.bare and q.mb is not None and q.mb < 1024:
            yield _f("gpu-memory-unit", "warning", a.line, a.key,
                     f"gpus_minimum_memory = {q.mb:g} means {q.mb:g} MB of GPU memory (a bare number "
                     "is MB), which every GPU has: GB was probably meant.",
                     f"write `gpus_minimum_memory = {q.mb:g}GB`.")


@rule
def missing_requests(ctx: Context) -> Iterator[Finding]:
    gpu_job = ctx.req.gpus > 0
    if not ctx.sub.has("request_cpus"):
        yield _f("no-request-cpus", "warning" if gpu_job else "info", None, "request_cpus",
                 "request_cpus is not set, so the job gets HTCondor's default of 1 CPU"
                 + ("; data loading on one core often leaves the GPU idle." if gpu_job else "."),
                 "set `request_cpus` to the threads the job uses, e.g. `request_cpus = 4`.")
    if not ctx.sub.has("request_memory"):
        yield _f("no-request-memory", "warning", None, "request_memory",
                 "request_memory is not set; the pool's default (HTCondor: 128 MB) applies and the "
                 "job is held or killed when it uses more.",
                 "set it from a measurement: `advisor profile` or `advisor logs`, e.g. `request_memory = 8GB`.")
    if not ctx.sub.has("request_disk"):
        yield _f("no-request-disk", "info", None, "request_disk",
                 "request_disk is not set; HTCondor's default is about max(1 GiB, 1.25 x the input "
                 "size), too little once checkpoints and outputs grow.",
                 "set it with a unit, e.g. `request_disk = 20GB`.")
    gpus_lines = [a for a in ctx.sub.assignments if a.before_queue and
                  (a.key.lower().startswith("gpus_") or a.key.lower() == "require_gpus")]
    if gpus_lines and not ctx.sub.has("request_gpus"):
        a = gpus_lines[0]
        names = ", ".join(sorted({g.key for g in gpus_lines}))
        yield _f("gpus-without-request-gpus", "error", a.line, a.key,
                 f"{names} {'is' if len(gpus_lines) == 1 else 'are'} ignored without request_gpus: "
                 "the job asks for no GPU and runs on a CPU slot.",
                 "add `request_gpus = 1`.")


@rule
def legacy(ctx: Context) -> Iterator[Finding]:
    for a in ctx.sub.all("+WantGPULab"):
        yield _f("want-gpulab", "info", a.line, a.key,
                 "+WantGPULab is no longer required (removed from CHTC's guide in May 2026); harmless.",
                 "delete the line; request_gpus is enough to reach the GPU Lab.")
    for a in ctx.sub.all("requirements"):
        for attr, new, unit in (("CUDACapability", "gpus_minimum_capability", ""),
                                ("CUDAGlobalMemoryMb", "gpus_minimum_memory", "MB")):
            m = re.search(rf"(?i)\b(?:TARGET\.)?{attr}\s*(>=|>|==|<=|<)\s*([0-9.]+)?", a.value)
            if not m:
                continue
            value = m.group(2)
            suggestion = f"`{new} = {value}{unit}`" if value and m.group(1) in (">=", ">") else f"`{new}`"
            yield _f("legacy-gpu-attribute", "warning", a.line, a.key,
                     f"{attr} is a legacy machine attribute: it describes one device only and newer "
                     "execute points may not advertise it, so matching is unreliable.",
                     f"drop it from requirements and write {suggestion} (with request_gpus).")


def run_rules(sub: SubmitFile, pool: Pool) -> tuple[list[Finding], dict[str, Any]]:
    req = job_request(sub)
    ctx = Context(sub=sub, pool=pool, req=req, analysis=analyze(sub, pool))
    findings: list[Finding] = []
    for r in RULES:
        findings.extend(r(ctx))
    return findings, ctx.analysis


# More rules, registered on import in this order: the job in its pool (matching, tiers,
# checkpointing, secrets, data), then the values themselves (NaN, negative, impossible sizes, quotes).
from advisor.check import pool_rules as _pool_rules  # noqa: E402,F401  (registers its rules)
from advisor.check import values as _values  # noqa: E402,F401  (registers its rules)
