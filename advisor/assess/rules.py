"""The rules behind a verdict. Each takes the Context and returns Checks naming numbers and rules.

Statuses: `fail` (not a fit), `checkpoint` (HTC-able only with checkpointing), `warn`, `ok`,
`info`. Sources of the thresholds: the pool file (tiers, data rules, fit table, limits) and
docs/DOMAIN.md; the transfer-overhead figures used for batching are stated as assumptions. The pool
answers its own questions (transfer route, GPUs per server, tier limits); the wall-time formulas
are `simulator.theory`'s.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from advisor.assess.runtime import GpuOption
from advisor.units import fmt_hours
from advisor.workload import Workload
from simulator.catalog import Catalog
from simulator.pool import Pool, Tier
from simulator.theory import no_checkpoint_wall_time

TARGET_JOB_HOURS = 1.0          # batch short items into jobs of about an hour
MIN_JOB_MINUTES = 10.0          # below this, per-job overhead dominates
TRANSFER_GBPS = 0.1             # assumption: 100 MB/s from the access point or OSDF cache
JOB_STARTUP_S = 60.0            # assumption: match, start, container set-up
CHECKPOINT_OVERHEAD_LIMIT = 0.25  # expected time lost to evictions without checkpoints
NEVER_FINISHES_FACTOR = 1e6     # beyond this many times the work, say "never finishes"


@dataclass
class Check:
    rule: str
    status: str          # ok | info | warn | checkpoint | fail
    text: str
    advice: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "status": self.status, "text": self.text,
                "advice": self.advice, "numbers": self.numbers}


@dataclass
class Context:
    workload: Workload
    pool: Pool
    catalog: Catalog
    options: list[GpuOption]
    facts: dict[str, Any] = field(default_factory=dict)
    instead: list[str] = field(default_factory=list)

    @property
    def usable(self) -> list[GpuOption]:
        return [o for o in self.options if o.fits and o.task_hours is not None]

    def typical_hours(self) -> float | None:
        """Count-weighted median of one task's hours over the usable GPUs a job may land on."""
        opts = [o for o in self.usable if o.shared] or self.usable
        if not opts:
            return None
        weighted = sorted((o.task_hours or 0.0, o.shared or o.backfill) for o in opts)
        total = sum(w for _, w in weighted)
        acc = 0
        for hours, w in weighted:
            acc += w
            if acc >= total / 2:
                return hours
        return weighted[-1][0]


def tier_runtime(t: Tier) -> str:
    return fmt_hours(t.max_hours)


def rule_nodes(ctx: Context) -> list[Check]:
    n = ctx.workload.per_task.nodes
    if n <= 1:
        return [Check("nodes", "ok", "Each task runs on one machine, as HTC jobs do.")]
    ctx.instead.append("Run the multi-node training on a cluster built for tightly coupled jobs "
                       "(a Slurm GPU cluster with a fast interconnect, e.g. an ACCESS or NAIRR "
                       "allocation, or your campus HPC cluster).")
    return [Check("nodes", "fail", f"Each task spans {n} nodes; HTC pools run every job on one "
                  "machine with no interconnect between jobs.", numbers={"nodes": n})]


def rule_gpus_per_task(ctx: Context) -> list[Check]:
    g = ctx.workload.per_task.gpus
    if g == 0:
        return [Check("gpus", "ok", "The task needs no GPU.")]
    most = ctx.pool.max_gpus_per_server
    ok_gpus = ctx.pool.fit_table.get("gpus", {}).get("ok")
    if g > most:
        return [Check("gpus", "fail", f"Each task needs {g} GPUs on one machine; the largest "
                      f"servers in {ctx.pool.name} have {most}.", numbers={"gpus": g, "max": most})]
    if g == 1:
        return [Check("gpus", "ok", "One GPU per task: the unit HTC pools schedule best.")]
    text = (f"{g} GPUs per task fit on one server (up to {most}), but such jobs wait for "
            f"{g} free GPUs on the same machine.")
    if ok_gpus is not None and g > ok_gpus:
        text += f" The {ctx.pool.name} fit table says more than {ok_gpus} GPU: talk to a facilitator."
    return [Check("gpus", "warn", text, numbers={"gpus": g})]


def rule_gpu_memory(ctx: Context) -> list[Check]:
    per = ctx.workload.per_task
    if per.gpus == 0:
        return []
    fit = [o for o in ctx.options if o.fits]
    largest = max(ctx.options, key=lambda o: o.gpu_memory_gb)
    need = ctx.options[0].needed_memory_gb if ctx.options else 0.0
    if not fit:
        ctx.instead.append("Shrink the per-GPU footprint (smaller model or batch, activation "
                           "checkpointing, 8-bit optimizers, LoRA-style fine-tuning of an existing "
                           "model) until one task fits on one GPU; then the work becomes HTC-able.")
        return [Check("gpu_memory", "fail",
                      f"One task needs {need:.1f} GB of GPU memory ({per.gpu_memory_gb:g} GB stated "
                      f"+ margin + CUDA context); the largest GPU in {ctx.pool.name} is the "
                      f"{largest.gpu} with {largest.gpu_memory_gb:g} GB.",
                      numbers={"needed_gb": need, "largest_gb": largest.gpu_memory_gb})]
    shared = sum(o.shared for o in fit)
    backfill = sum(o.backfill for o in fit)
    floor = min(o.gpu_memory_gb for o in fit)
    return [Check("gpu_memory", "ok",
                  f"Needs {need:.1f} GB of GPU memory: {len(fit)} of {len(ctx.options)} GPU types "
                  f"fit ({shared} shared GPUs + {backfill} backfill; smallest that fits: {floor:g} GB).",
                  numbers={"needed_gb": need, "shared_gpus": shared, "backfill_gpus": backfill})]


def rule_host_memory(ctx: Context) -> list[Check]:
    mem = ctx.workload.per_task.memory_gb
    slots = [s.memory_gb for s in ctx.pool.slots] if ctx.workload.uses_gpu else []
    out = []
    if slots and mem > max(slots):
        out.append(Check("memory", "fail", f"{mem:g} GB of host memory per task exceeds every GPU "
                         f"slot in {ctx.pool.name} (at most {max(slots):g} GB).",
                         numbers={"memory_gb": mem}))
    ok_mem = ctx.pool.fit_table.get("memory_gb", {}).get("ok")
    if ok_mem is not None and mem > ok_mem:
        out.append(Check("memory", "warn", f"{mem:g} GB of memory per task is above the "
                         f"{ctx.pool.name} fit table's {ok_mem:g} GB: talk to a facilitator."))
    return out


def rule_runtime(ctx: Context) -> list[Check]:
    w, pool = ctx.workload, ctx.pool
    hours = ctx.typical_hours()
    if hours is None:
        return []
    usable = ctx.usable
    lo = min(o.task_hours or 0 for o in usable)
    hi = max(o.task_hours or 0 for o in usable)
    ctx.facts["task_hours"] = {"typical": hours, "fastest": lo, "slowest": hi}
    span = f"~{fmt_hours(hours)} per task on a typical usable GPU ({fmt_hours(lo)} to {fmt_hours(hi)})"
    checks: list[Check] = []
    if not pool.tiers:
        checks.append(Check("runtime", "ok", f"{span}; the pool has no length limit."))
    else:
        default = pool.default_tier or pool.tiers[0]
        longest = max(pool.tiers, key=lambda t: t.max_hours)
        tier = pool.shortest_tier(hours)
        if tier is not None and hours <= default.max_hours:
            checks.append(Check("runtime", "ok", f"{span}: fits the `{tier.name}` tier "
                                f"({tier_runtime(tier)}) with room to spare." if hours < 0.8 * tier.max_hours
                                else f"{span}: fits the `{tier.name}` tier ({tier_runtime(tier)}), "
                                "but with little margin.", numbers={"tier": tier.name}))
        elif tier is not None:
            limit = pool.user_gpu_limit(tier)
            short = min(pool.tiers, key=lambda t: t.max_hours)
            waves = math.ceil(w.tasks / max(limit, 1))
            text = (f"{span}: needs the `{tier.name}` tier ({tier_runtime(tier)}), where one user "
                    f"may hold {limit} GPUs")
            if w.tasks > limit and w.can_checkpoint:
                checks.append(Check("runtime", "checkpoint", text + f": {w.tasks} tasks would run "
                                    f"{limit} at a time, in {waves} waves (~{fmt_hours(waves * hours)}). "
                                    f"Checkpointing lets each task run as a chain of jobs in the "
                                    f"`{short.name}` tier ({pool.user_gpu_limit(short)} GPUs per user) "
                                    "and on backfill.", numbers={"tier": tier.name, "limit": limit}))
            elif w.tasks > limit:
                checks.append(Check("runtime", "warn", text + f": {w.tasks} tasks would run {limit} "
                                    f"at a time ({waves} waves), and the tasks cannot checkpoint."))
            else:
                checks.append(Check("runtime", "ok", text + f", enough for {w.tasks} task(s).",
                                    numbers={"tier": tier.name}))
        elif w.can_checkpoint:
            checks.append(Check("runtime", "checkpoint", f"{span}: longer than the longest tier "
                                f"(`{longest.name}`, {tier_runtime(longest)}). Each task must "
                                "checkpoint and resume across a chain of jobs.",
                                numbers={"longest_tier_hours": longest.max_hours}))
        else:
            checks.append(Check("runtime", "fail", f"{span}: longer than the longest tier "
                                f"(`{longest.name}`, {tier_runtime(longest)}), and the task cannot "
                                "checkpoint. Split it into shorter tasks or add checkpointing.",
                                numbers={"longest_tier_hours": longest.max_hours}))
    checks.extend(_eviction_checks(ctx, hours))
    return checks


def _eviction_checks(ctx: Context, hours: float) -> list[Check]:
    pool, w = ctx.pool, ctx.workload
    evicting = [s for s in pool.slots if s.time_to_eviction is not None]
    out = []
    backfill = [s for s in evicting if s.backfill_only]
    guidance = pool.limits.get("backfill_suited_below_hours")
    if backfill and guidance is not None and hours > guidance:
        n = sum(s.count for s in backfill)
        out.append(Check("backfill", "info", f"{n} more GPUs are reachable as backfill "
                         f"(+is_resumable) for jobs under ~{guidance:g} h or that checkpoint at "
                         f"least that often; a {fmt_hours(hours)} task needs checkpoints to use them."))
    shared_evicting = [s for s in evicting if not s.backfill_only]
    if shared_evicting:
        mtte = min(s.time_to_eviction.mean for s in shared_evicting if s.time_to_eviction)
        wall = no_checkpoint_wall_time(hours, 0.0, mtte)
        overhead = wall / hours - 1
        ctx.facts["eviction_overhead_without_checkpoints"] = overhead
        took = (f"{fmt_hours(wall)} on average (+{overhead:.0%})" if overhead < 10
                else f"over {overhead:.0f}× as long, in practice never finishing"
                if overhead < NEVER_FINISHES_FACTOR else "so long that it never finishes, in practice")
        text = (f"Every slot in {pool.name} can be preempted (mean time to eviction {mtte:g} h, "
                f"assumed): without checkpoints a {fmt_hours(hours)} task takes {took}.")
        if overhead > CHECKPOINT_OVERHEAD_LIMIT and w.can_checkpoint:
            out.append(Check("eviction", "checkpoint", text + " Checkpointing bounds the loss."))
        elif overhead > CHECKPOINT_OVERHEAD_LIMIT:
            out.append(Check("eviction", "warn", text + " Shorter tasks would lose less."))
        else:
            out.append(Check("eviction", "ok", text))
    return out


def rule_data(ctx: Context) -> list[Check]:
    w, pool = ctx.workload, ctx.pool
    per = w.per_task
    out: list[Check] = []
    if w.data_stays_on_campus and pool.limits.get("runs_off_campus"):
        out.append(Check("data", "fail", f"The data may not leave campus, but {pool.name} runs "
                         "jobs at other institutions.", advice=["Run on the campus pool (e.g. CHTC)."]))
    for what, size in (("input", per.input_gb), ("shared input (model/container)", w.shared_input_gb)):
        if size <= 0 or not pool.data_rules:
            continue
        route = pool.transfer_route(size)
        if route is None:
            continue
        if route.method == "facilitator":
            largest = max((r.max_gb for r in pool.data_rules if r.max_gb), default=0)
            out.append(Check("data", "fail", f"Per-task {what} of {size:g} GB is beyond what "
                             f"{pool.name} moves per job ({largest:g} GB per file): {route.how}.",
                             numbers={"input_gb": size}))
            ctx.instead.append("Shard the dataset so that each job reads a slice it can transfer, "
                               "or stream it from a data service near the GPUs.")
        elif route.method == "transfer_input_files":
            out.append(Check("data", "ok", f"Per-task {what} of {size:g} GB transfers with the job "
                             f"({route.how})."))
        else:
            out.append(Check("data", "ok", f"Per-task {what} of {size:g} GB: stage it ({route.method}).",
                             advice=[f"Stage the {size:g} GB {what}: {route.how}."]))
    ok_in = pool.fit_table.get("input_gb", {}).get("ok")
    if ok_in is not None and per.input_gb > ok_in:
        out.append(Check("data", "warn", f"{per.input_gb:g} GB of input per job is above the "
                         f"{pool.name} fit table's {ok_in:g} GB: talk to a facilitator."))
    if per.output_gb > 1 and pool.data_rules:
        route = pool.transfer_route(per.output_gb)
        if route is not None and route.method != "transfer_input_files":
            out.append(Check("data", "info", f"{per.output_gb:g} GB of output per task: send it "
                             "back through staging rather than to the access point "
                             "(transfer_output_remaps)."))
    return out


def rule_cpu_vs_gpu(ctx: Context) -> list[Check]:
    w, pool = ctx.workload, ctx.pool
    per = w.per_task
    hours = ctx.typical_hours()
    if per.cpu_hours is None or hours is None or pool.cpu_slots is None:
        return []
    job_hours = max(TARGET_JOB_HOURS, hours)
    tier = pool.shortest_tier(job_hours)
    n_gpu = min(pool.user_gpu_limit(tier), sum(o.shared for o in ctx.usable))
    gpu_wall = w.tasks * hours / max(n_gpu, 1)
    cores_per_task = max(1, math.ceil(per.memory_gb / pool.cpu_slots.memory_gb))
    concurrent = max(1, pool.cpu_slots.count // cores_per_task)
    cpu_wall = w.tasks * per.cpu_hours / concurrent
    ratio = cpu_wall / gpu_wall
    ctx.facts["cpu_vs_gpu"] = {"gpu_wall_hours": gpu_wall, "cpu_wall_hours": cpu_wall,
                               "gpus": n_gpu, "cpu_tasks_at_once": concurrent, "ratio": ratio}
    text = (f"GPU vs CPU for the whole workload: {w.tasks:,} tasks × {fmt_hours(hours)} on "
            f"{n_gpu} GPUs (one user's share) ≈ {fmt_hours(gpu_wall)}; on CPUs "
            f"{w.tasks:,} × {fmt_hours(per.cpu_hours)} with {concurrent} tasks at once "
            f"({cores_per_task} cores each for {per.memory_gb:g} GB, {pool.cpu_slots.count} cores) "
            f"≈ {fmt_hours(cpu_wall)}.")
    if ratio >= 1:
        text += f" GPUs finish {ratio:.1f}× sooner."
    else:
        text += f" CPUs finish {1 / ratio:.1f}× sooner, and CPU slots are far easier to get."
    return [Check("cpu_vs_gpu", "info", text, numbers=ctx.facts["cpu_vs_gpu"])]


def rule_tasks(ctx: Context) -> list[Check]:
    w, pool = ctx.workload, ctx.pool
    hours = ctx.typical_hours()
    if w.tasks == 1:
        return [Check("tasks", "info", "One task: HTC gives no parallel speed-up here, but the "
                      "job runs like any other; the gain comes when you run many variants.")]
    if hours is None:
        return []
    out = []
    if hours * 60 < MIN_JOB_MINUTES:
        overhead_s = JOB_STARTUP_S + w.shared_input_gb / TRANSFER_GBPS
        items = max(1, min(w.tasks, math.ceil(TARGET_JOB_HOURS / hours)))
        jobs = math.ceil(w.tasks / items)
        job_hours = items * hours
        frac = overhead_s / 3600 / (job_hours + overhead_s / 3600)
        ctx.facts["batching"] = {"items_per_job": items, "jobs": jobs, "job_hours": job_hours,
                                 "overhead_fraction": frac}
        text = (f"{w.tasks:,} independent tasks of ~{fmt_hours(hours)}: batch {items:,} per job "
                f"→ {jobs:,} jobs of ~{fmt_hours(job_hours)}, so the per-job overhead (~{overhead_s:.0f} s "
                f"to start and fetch {w.shared_input_gb:g} GB of shared input, assumed) stays near "
                f"{frac:.0%}.")
        advice = [f"Batch {items:,} items per job ({jobs:,} jobs); per job: "
                  f"{items * w.per_task.input_gb:.2g} GB in, {items * w.per_task.output_gb:.2g} GB out."]
        max_idle = pool.limits.get("max_idle_jobs_per_user")
        if max_idle and jobs > max_idle:
            advice.append(f"{jobs:,} jobs exceed the {max_idle:,} queued jobs allowed per user: "
                          "submit in waves (DAGMan with a max-idle limit).")
        out.append(Check("tasks", "ok", text, advice=advice, numbers=ctx.facts["batching"]))
    else:
        out.append(Check("tasks", "ok", f"{w.tasks:,} independent tasks: the shape HTC pools "
                         "are built for."))
    return out


RULES: list[Callable[[Context], list[Check]]] = [
    rule_nodes, rule_gpus_per_task, rule_gpu_memory, rule_host_memory, rule_runtime, rule_data,
    rule_cpu_vs_gpu, rule_tasks,
]
