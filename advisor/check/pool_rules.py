"""Rules on the job in its pool: whether a slot matches it, the length tier it gets, whether it
checkpoints often enough for that tier, and what it carries to the execute point (secrets in the
job ad or its inputs, inputs that need staging or another transfer route). Registered with the
other rules by `rules.py`, after the rules on the file as written.

Facts behind them (docs/DOMAIN.md §1-§4): CHTC's `+GPUJobLength` tiers and the OSPool's
`+JobDurationCategory`; backfill suits jobs under 4-6 h or that checkpoint that often.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from pathlib import Path

from advisor.check.findings import Finding
from advisor.check.rules import Context, _f, rule
from advisor.check.secrets import SECRET_FILES, SECRET_NAME, find_secrets
from advisor.check.submitfile import SubmitFile
from simulator.pool import Pool, Tier

LONG_JOB_HOURS = 24.0             # beyond a day without checkpoints, one interruption costs days


# --- where it matches ---------------------------------------------------------------------------

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
