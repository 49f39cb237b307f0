"""The rules `advisor check` applies. Each takes the parsed file and the pool and yields findings.

Facts behind them (docs/DOMAIN.md §1-§4): units of request_memory (MB) and request_disk (KiB) without a
suffix; `gpus_*` ignored without `request_gpus`; a second `requirements` replaces the first;
`+is_resumable` (ClassAd names ignore case, but `IsResumable` is another attribute); CHTC's
`+GPUJobLength` tiers and the OSPool's `+JobDurationCategory`; backfill suits jobs under 4-6 h
or that checkpoint that often; `+WantGPULab` no longer required; legacy `CUDACapability`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
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
from advisor.check.secrets import SECRET_FILES, SECRET_NAME, find_secrets, redact
from advisor.check.submitfile import Assignment, SubmitFile, parse_quantity
from simulator.pool import Pool, Tier

DEFAULT_BACKFILL_HOURS = 6.0      # CHTC gpu-jobs.md: backfill suits jobs under 4-6 h
LONG_JOB_HOURS = 24.0             # beyond a day without checkpoints, one interruption costs days
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


def rule(fn: Rule) -> Rule:
    RULES.append(fn)
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


@rule
def match(ctx: Context) -> Iterator[Finding]:
    analysis = ctx.analysis
    if not analysis.get("clauses"):
        return
    total = analysis["pool_gpus"]
    alone = [c for c in analysis["clauses"] if c["matches_gpus"] == 0]
    for c in alone:
        yield _f("no-match", "error", c["line"], c["command"],
                 f"{c['clause']}: no GPU slot of pool {ctx.pool.name!r} satisfies this (it excludes "
                 f"all {total} GPUs, see the matching table); the job would stay idle.",
                 _match_fix(c["command"], ctx))
    if not alone and analysis["matching_gpus"] == 0:
        parts = "; ".join(f"{c['clause']} (line {c['line']}) excludes {c['excludes_gpus']}"
                          for c in analysis["clauses"] if c["excludes_gpus"])
        yield _f("no-match", "error", ctx.sub.queue_lines[0][0] if ctx.sub.queue_lines else None,
                 "requirements", f"together the clauses exclude every GPU of pool {ctx.pool.name!r}: "
                 f"{parts}; the job would stay idle.",
                 "relax the clause that excludes the most (see the analysis table).")
    elif analysis["matching_gpus"] and analysis["matching_gpus"] < 0.1 * total:
        yield _f("few-matches", "info", ctx.sub.line("request_gpus"), "request_gpus",
                 f"only {analysis['matching_gpus']} of {total} GPUs match "
                 f"({', '.join(analysis['matching_slot_classes'])}); expect long waits.",
                 "relax the most restrictive clause if the job can run elsewhere (see the analysis table).")


def _match_fix(command: str, ctx: Context) -> str:
    slots = ctx.pool.slots
    if command == "request_gpus":
        most = ctx.pool.max_gpus_per_server
        return f"request at most {most} GPUs per job (request_gpus = {most}), or split the work into more jobs."
    if command in ("gpus_minimum_capability", "requirements"):
        best = max(s.capability for s in slots)
        return f"lower gpus_minimum_capability to at most {best:.1f}."
    if command == "gpus_maximum_capability":
        return f"raise gpus_maximum_capability to at least {min(s.capability for s in slots):.1f}."
    if command == "gpus_minimum_memory":
        return f"lower gpus_minimum_memory to at most {max(s.gpu_memory_mb for s in slots)}MB."
    if command == "request_memory":
        return f"lower request_memory to at most {max(s.memory_gb for s in slots) * max(ctx.req.gpus, 1):g}GB."
    if command == "request_cpus":
        return f"lower request_cpus to at most {max(s.cpus for s in slots) * max(ctx.req.gpus, 1)}."
    if command == "request_disk":
        return f"lower request_disk to at most {max(s.disk_gb for s in slots) * max(ctx.req.gpus, 1):g}GB."
    return "set `+is_resumable = true` to reach the owned GPUs as backfill."


# --- tiers, checkpointing, backfill ------------------------------------------------------------

@rule
def tier(ctx: Context) -> Iterator[Finding]:
    attr = ctx.pool.tier_attribute
    if not attr or not ctx.pool.tiers:
        return
    a = ctx.sub.last(attr)
    names = [t.name for t in ctx.pool.tiers]
    if a is None:
        default = ctx.pool.default_tier
        if default is not None and ctx.req.gpus > 0:
            yield _f("no-tier", "info", None, attr,
                     f"no {attr}: the job gets the default tier {default.name!r} "
                     f"({default.max_hours:g} h).",
                     f"state it: `{attr} = \"{default.name}\"` (or a shorter tier if the job fits: "
                     f"{', '.join(f'{t.name} {t.max_hours:g} h' for t in ctx.pool.tiers)}).")
        return
    value = (ctx.sub.value(attr) or a.value).strip()
    if not (value.startswith('"') and value.endswith('"')):
        bare = value.strip("'")
        yield _f("tier-unquoted", "error", a.line, a.key,
                 f"{attr} = {value} is not a string: ClassAd reads `{bare}` as an attribute name, "
                 "which is undefined, so the tier is not set.",
                 f"quote it: `{attr} = \"{bare}\"`.")
        value = f'"{bare}"'
    name = value.strip('"')
    found = [t for t in ctx.pool.tiers if t.name.lower() == name.lower()]
    if not found:
        near = difflib.get_close_matches(name, names, n=2, cutoff=0.5)
        choices = ", ".join(f'{attr} = "{n}"' for n in names)
        yield _f("unknown-tier", "error", a.line, a.key,
                 f"\"{name}\" is not a tier of pool {ctx.pool.name!r} ({', '.join(names)}).",
                 f"use one of: {choices}.", tuple(near))
        return
    t = found[0]
    if ctx.tier is not None:
        return
    ctx.tier, ctx.tier_line = t, a.line
    limit = t.per_user_limit(ctx.pool.shared_gpus)
    if limit is not None and ctx.req.gpus > limit:
        yield _f("tier-user-limit", "error", a.line, a.key,
                 f"tier {t.name!r} lets one user hold at most {limit} GPUs at once, but each job asks "
                 f"for {ctx.req.gpus}: it can never start.",
                 f"request at most {limit} GPUs per job, or use a shorter tier with a larger share.")
    elif limit is not None and t.per_user_gpus is not None:
        jobs = _queue_count(ctx.sub)
        if jobs is not None and jobs * max(ctx.req.gpus, 1) > limit:
            yield _f("tier-user-limit", "info", a.line, a.key,
                     f"tier {t.name!r} runs at most {limit} GPUs per user at once: of your {jobs} jobs "
                     f"about {max(1, limit // max(ctx.req.gpus, 1))} run at a time.",
                     "split the work into shorter jobs (with checkpoints) in a shorter tier to run more at once.")


def _queue_count(sub: SubmitFile) -> int | None:
    if not sub.queue_lines:
        return None
    args = sub.queue_lines[0][1].strip()
    if not args:
        return 1
    return int(args) if args.isdigit() else None


def _effective_tier(ctx: Context) -> Tier | None:
    if ctx.tier is not None:
        return ctx.tier
    if ctx.pool.tier_attribute and ctx.sub.has(ctx.pool.tier_attribute):
        return None  # a tier was named but is not valid: already an error
    return ctx.pool.default_tier


def _checkpoint_advice(pool: Pool) -> str:
    """How often to checkpoint, in the pool's own guidance where its file gives one."""
    g = pool.checkpoint_guidance
    if g is None:
        return "checkpoint regularly"
    return f"checkpoint every {g.min_hours:g}-{g.max_hours:g} h ({pool.possessive} guidance)"


def _run_limit_hours(ctx: Context, tier_hours: float) -> float:
    """How long a run may last: the tier's limit, or `allowed_execute_duration` (seconds) when shorter."""
    raw = (ctx.sub.value("allowed_execute_duration") or "").strip()
    return min(tier_hours, int(raw) / 3600) if raw.isdigit() and int(raw) > 0 else tier_hours


def _keeps_checkpoint(ctx: Context) -> bool:
    """The job's checkpoint survives an interruption without exit 85: ON_EXIT_OR_EVICT with a
    checkpoint directory in transfer_output_files (the program saves it on SIGTERM; docs/DOMAIN.md)."""
    when = (ctx.sub.value("when_to_transfer_output") or "").strip().upper()
    outputs = (ctx.sub.value("transfer_output_files") or "").lower()
    return when == "ON_EXIT_OR_EVICT" and "checkpoint" in outputs


@rule
def checkpointing(ctx: Context) -> Iterator[Finding]:
    t = _effective_tier(ctx)
    guidance = ctx.backfill_hours
    if ctx.req.gpus <= 0 or t is None:
        return
    where = ctx.tier_line
    limit = _run_limit_hours(ctx, t.max_hours)
    if not ctx.checkpoints and not _keeps_checkpoint(ctx) and limit > guidance:
        long_job = t.max_hours > LONG_JOB_HOURS or ctx.preemptible
        why = (f"tier {t.name!r} lets a job run up to {t.max_hours:g} h but the file does not "
               "checkpoint (no checkpoint_exit_code): ")
        why += ("any interruption (eviction, a failed node, the hold at the limit) restarts it from zero."
                if long_job else f"past about {guidance:g} h an interruption is costly.")
        yield _f("long-without-checkpoint", "warning" if long_job else "info", where, ctx.pool.tier_attribute or "checkpoint_exit_code",
                 why,
                 _checkpoint_advice(ctx.pool) + ": `checkpoint_exit_code = 85`, `transfer_checkpoint_files = "
                 "checkpoint.pt` and a wrapper `timeout 4h ./run.sh; [ $? -eq 124 ] && exit 85` "
                 "(`advisor recommend` writes one).")
    a = ctx.sub.last("+is_resumable")
    if a is not None and ctx.req.is_resumable and not ctx.checkpoints and not _keeps_checkpoint(ctx) \
            and limit > guidance:
        yield _f("resumable-without-checkpoint", "warning", a.line, a.key,
                 f"+is_resumable lets the job run as backfill, where it may be interrupted at any time; "
                 f"without checkpointing, a job longer than about {guidance:g} h (tier {t.name!r} allows "
                 f"{t.max_hours:g} h) may restart from zero again and again.",
                 f"keep each job under {guidance:g} h, or checkpoint at least that often "
                 "(`checkpoint_exit_code = 85` with `transfer_checkpoint_files`).")
    if ctx.checkpoints and not ctx.sub.has("transfer_checkpoint_files"):
        c = ctx.sub.last("checkpoint_exit_code")
        yield _f("checkpoint-files", "info", c.line if c else None, "transfer_checkpoint_files",
                 "checkpoint_exit_code without transfer_checkpoint_files: at each checkpoint HTCondor "
                 "saves all output files, which may be more than the checkpoint needs.",
                 "name the checkpoint: `transfer_checkpoint_files = checkpoint.pt`.")


# --- secrets and data --------------------------------------------------------------------------

@rule
def secrets(ctx: Context) -> Iterator[Finding]:
    secret_key = re.compile(rf"(?i)^\+?(my\.)?{SECRET_NAME}$")
    for a in ctx.sub.assignments:
        key = a.key.lower()
        found = find_secrets(a.value)
        if not found and secret_key.match(a.key) and a.value.strip().strip('"') and not a.value.strip().startswith("$"):
            found = find_secrets(f"{a.key.lstrip('+')}={a.value.strip()}")
        for s in found:
            where = "the job's environment" if key in ("environment", "env", "environment2") else f"`{a.key}`"
            yield _f("secret", "error", a.line, a.key,
                     f"{s.name} = {s.masked}: a secret in {where} is stored in the job ClassAd, which "
                     "`condor_q -l` shows to other users of the access point, and in logs.",
                     "remove it from the submit file and rotate it; put it in a file only you can read "
                     "(chmod 600), send that file with transfer_input_files and read it in the job.")
    for a in ctx.sub.all("transfer_input_files"):
        for entry in (e.strip() for e in a.value.split(",")):
            if entry and SECRET_FILES.search(entry):
                yield _f("secret-file", "warning", a.line, a.key,
                         f"{entry} is sent with the job; it likely holds credentials, which then sit "
                         "on the execute point's disk.",
                         "send only the one credential the job needs, in a file readable only by you "
                         "(chmod 600), and never a whole .env; prefer short-lived tokens.")
    for key in ("getenv", "get_env"):
        g = ctx.sub.last(key)
        if g is not None and g.value.strip().lower() in ("true", "yes", "1", "*"):
            yield _f("getenv", "warning", g.line, g.key,
                     f"{g.key} = {g.value.strip()} copies your whole login environment into the job "
                     "ad, including any API tokens or passwords set there (HF_TOKEN, AWS_*, ...).",
                     "name only the variables the job needs: `getenv = PATH, LANG`, or set them with "
                     "`environment = \"NAME=value\"`.")


@rule
def data(ctx: Context) -> Iterator[Finding]:
    a = ctx.sub.last("transfer_input_files")
    if a is None:
        return
    entries = [e.strip() for e in (ctx.sub.value("transfer_input_files") or a.value).split(",") if e.strip()]
    staging = next((r for r in ctx.pool.data_rules if r.method == "staging"), None)
    if staging is not None and any(e.startswith("file:///staging") for e in entries):
        needed = re.search(r"\((\w+)\s*==\s*true\)", staging.how)
        attribute = needed.group(1) if needed else "HasCHTCStaging"
        if attribute.lower() not in (ctx.sub.value("requirements") or "").lower():
            yield _f("staging-requirement", "error", a.line, a.key,
                     f"file:///staging inputs are readable only on execute points with {attribute}; "
                     "without that requirement the job may land elsewhere and fail to start.",
                     f"add `requirements = ({attribute} == true)` (merged into any existing requirements).")
    base = Path(ctx.sub.path).parent
    direct = ctx.pool.transfer_route(0.0)   # the route of the smallest files
    if direct is None or direct.max_gb is None:
        return
    for e in entries:
        if "://" in e:
            continue
        try:
            p = (base / e)
            size_gb = p.stat().st_size / 1024 ** 3 if p.is_file() else None
        except OSError:
            size_gb = None
        better = ctx.pool.transfer_route(size_gb) if size_gb is not None else None
        if size_gb is not None and better is not direct:
            how = (f"use {better.method}: {better.how}." if better is not None
                   else "split it into files of at most "
                   f"{max(r.max_gb or 0.0 for r in ctx.pool.data_rules):g} GB (the pool's largest route).")
            yield _f("large-input", "warning", a.line, a.key,
                     f"{e} is {size_gb:.1f} GB; pool {ctx.pool.name!r} sends files over "
                     f"{direct.max_gb:g} GB another way ({direct.source or 'pool data rules'}).",
                     how)


def run_rules(sub: SubmitFile, pool: Pool) -> tuple[list[Finding], dict[str, Any]]:
    req = job_request(sub)
    ctx = Context(sub=sub, pool=pool, req=req, analysis=analyze(sub, pool))
    findings: list[Finding] = []
    for r in RULES:
        findings.extend(r(ctx))
    return findings, ctx.analysis


# More rules: the values themselves (NaN, negative, impossible sizes, quotes).
from advisor.check import values as _values  # noqa: E402,F401  (registers its rules)
