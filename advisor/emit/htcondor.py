"""The HTCondor submit file: every value with its unit and a comment that says why.

Follows DOMAIN.md: `request_memory`/`request_disk`/`gpus_minimum_memory` always carry a unit (a
bare `request_disk` is KiB), the pool's length tier (`+GPUJobLength` on CHTC,
`+JobDurationCategory` on the OSPool), `+is_resumable = true` for backfill, exit-driven
checkpointing (`checkpoint_exit_code = 85` with the wrapper), and each input file sent the way
the pool's data rules say for its size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from advisor.emit.common import (
    CHECKPOINT_EXIT_CODE,
    WRAPPER_NAME,
    check_job,
    check_request,
    disk_quantity,
    reasons,
    safe_name,
    tier_for,
    timeout_duration,
)
from advisor.request import DataFile, JobSpec, Request
from simulator.pool import DataRule, Pool

URL_SCHEMES = ("osdf://", "file://", "http://", "https://", "s3://", "stash://", "pelican://")


@dataclass(frozen=True)
class Transfer:
    """How one input reaches the job."""

    source: DataFile
    method: str                 # a DataRule.method, or "url" when the path already is one
    entry: str | None           # what goes into transfer_input_files (None: not transferred)
    requirement: str | None     # a clause the job needs on the execute point
    note: str                   # the comment line


def _rule_for(size_gb: float, rules: tuple[DataRule, ...]) -> DataRule | None:
    for rule in rules:
        if rule.max_gb is None or size_gb <= rule.max_gb + 1e-12:
            return rule
    return None


def _url_from_how(how: str, file_name: str, user: str | None) -> str | None:
    """The URL template in a data rule's `how` (e.g. osdf:///chtc/staging/NETID/FILE), filled in."""
    match = re.search(r"((?:osdf|file|stash|pelican|https?)://\S+)", how)
    if not match:
        return None
    url = match.group(1).rstrip(",;)")
    url = url.replace("FILE", file_name)
    if user:
        url = url.replace("NETID", user).replace("USER", user)
    return url


def _requirement_from_how(how: str) -> str | None:
    match = re.search(r"requirements\s*=\s*(\(.*\))", how)
    return match.group(1) if match else None


def plan_transfers(job: JobSpec, pool: Pool) -> list[Transfer]:
    """Each input's transfer method, chosen by its size against `pool.data_rules`."""
    user = job.extra.get("user")
    out = []
    for f in job.inputs:
        name = PurePosixPath(f.path).name or f.path
        size = f"{f.size_gb:g} GB"
        if f.path.startswith(URL_SCHEMES):
            out.append(Transfer(f, "url", f.path, None, f"{name} ({size}): given as a URL, sent as is"))
            continue
        rule = _rule_for(f.size_gb, pool.data_rules)
        if rule is None or rule.method == "transfer_input_files":
            limit = f" (up to {rule.max_gb:g} GB per file: {rule.source or pool.name})" if rule and rule.max_gb else ""
            out.append(Transfer(f, "transfer_input_files", f.path, None,
                                f"{name} ({size}): plain transfer_input_files{limit}"))
            continue
        if rule.method == "facilitator":
            out.append(Transfer(f, "facilitator", None, None,
                                f"{name} ({size}) is NOT transferred by this file: {rule.how} "
                                f"({rule.source or pool.name})."))
            continue
        url = _url_from_how(rule.how, name, user if isinstance(user, str) else None)
        requirement = _requirement_from_how(rule.how)
        placeholder = "" if user else " (replace NETID/USER with your user name)"
        out.append(Transfer(f, rule.method, url or f.path, requirement,
                            f"{name} ({size}): via {rule.method}: {rule.how}{placeholder}"
                            + (f" ({rule.source})" if rule.source else "")))
    return out


def submit_file_name(job: JobSpec) -> str:
    return f"{safe_name(job.name)}.sub"


def _quote_arguments(arguments: str) -> str:
    """`arguments` in HTCondor's new syntax: double-quoted, inner double quotes doubled."""
    return '"' + arguments.replace('"', '""') + '"'


def render_htcondor(request: Request, job: JobSpec, pool: Pool) -> str:
    """The submit file text for `job` with `request` on `pool`."""
    check_request(request)
    check_job(job, request)
    why = reasons(job)
    tier = tier_for(request, pool)
    lines: list[str] = []

    def add(command: str, value: object, comment: str | None = None, alias: str | None = None) -> None:
        reason = why.get(command) or (why.get(alias) if alias else None)
        text = "; ".join(t for t in (reason, comment) if t)
        if text:
            lines.append(f"# {text}")
        lines.append(f"{command} = {value}")

    def blank(title: str) -> None:
        if lines:
            lines.append("")
        lines.append(f"# --- {title} ---")

    name = safe_name(job.name)
    lines.append(f"# HTCondor submit file for {job.name}, written by advisor for pool {pool.name!r}.")
    lines.append(f"# Review it with `advisor check {name}.sub --pool {pool.name}` before condor_submit.")

    blank("what runs")
    if request.checkpoints:
        add("executable", WRAPPER_NAME,
            f"the checkpoint wrapper runs {job.executable} under `timeout "
            f"{timeout_duration(request.checkpoint_interval_minutes or 0)}` and exits "
            f"{CHECKPOINT_EXIT_CODE} when the time is up")
    else:
        add("executable", job.executable)
    if job.arguments:
        add("arguments", _quote_arguments(job.arguments))
    if job.container_image:
        add("container_image", job.container_image,
            "the software environment; large images are best served from OSDF/staging")
    if job.queue > 1 and job.items_per_job > 1:
        add("environment", f'"ADVISOR_JOB_INDEX=$(Process) ADVISOR_ITEMS_PER_JOB={job.items_per_job}"',
            f"job $(Process) handles items [index*{job.items_per_job}, (index+1)*{job.items_per_job})")

    blank("logs: $(Cluster)_$(Process) keeps each job's files apart")
    add("log", f"{name}_$(Cluster)_$(Process).log",
        "the job's event log (starts, evictions, holds, memory used): read them with `advisor logs`")
    add("output", f"{name}_$(Cluster)_$(Process).out")
    add("error", f"{name}_$(Cluster)_$(Process).err")

    blank("resources per job (units written out: a bare request_disk is KiB, a bare request_memory MB)")
    add("request_cpus", request.request_cpus,
        "CPU cores for the program and its data loading (HTCondor's default is 1)")
    add("request_memory", f"{request.request_memory_mb}MB", "host RAM, not GPU memory")
    add("request_disk", disk_quantity(request.request_disk_mb),
        "scratch disk for inputs, outputs and checkpoints")
    if request.request_gpus > 0:
        add("request_gpus", request.request_gpus)
        if request.gpus_minimum_capability is not None:
            add("gpus_minimum_capability", f"{request.gpus_minimum_capability:.1f}",
                "CUDA compute capability floor: any GPU at least this new may run the job")
        if request.gpus_maximum_capability is not None:
            add("gpus_maximum_capability", f"{request.gpus_maximum_capability:.1f}",
                "CUDA compute capability ceiling")
        if request.gpus_minimum_memory_mb is not None:
            add("gpus_minimum_memory", f"{request.gpus_minimum_memory_mb}MB",
                "GPU memory floor, per GPU (separate from request_memory, which is host RAM)")

    if pool.tier_attribute and tier is not None:
        blank("length tier")
        limit = f"jobs running past {tier.max_hours:g} h are held"
        per_user = tier.per_user_limit(pool.shared_gpus)
        if per_user is not None:
            limit += f"; at most {per_user} GPUs per user at once"
        default = " (the pool's default)" if tier.default else ""
        add(pool.tier_attribute, f'"{tier.name}"',
            f"tier {tier.name}{default}: {limit} ({tier.source or pool.name})", alias="job_length")

    if request.is_resumable:
        blank("backfill")
        owned = pool.total_gpus - pool.shared_gpus
        where = (f"also on the {owned} GPUs research groups own, as backfill that may be "
                 "interrupted at any time (no 72 h guarantee)") if owned else (
                 "may be interrupted and restarted (this pool has no owned GPUs to backfill)")
        add("+is_resumable", "true", f"may run {where}; with the underscore: IsResumable is another attribute",
            alias="is_resumable")

    if request.checkpoints:
        blank("checkpointing (CHTC checkpointing.md)")
        interval = timeout_duration(request.checkpoint_interval_minutes or 0)
        add("checkpoint_exit_code", CHECKPOINT_EXIT_CODE,
            f"exit {CHECKPOINT_EXIT_CODE} = checkpoint taken: HTCondor saves the files below and "
            f"restarts the job (every {interval})", alias="checkpoint_interval_minutes")
        add("transfer_checkpoint_files", ", ".join(job.checkpoint_files),
            "the files that make up the checkpoint, saved at each exit 85 and brought back on restart")

    blank("files")
    add("should_transfer_files", "YES", "the execute point has no shared file system with the access point")
    add("when_to_transfer_output", "ON_EXIT")
    transfers = plan_transfers(job, pool)
    entries = [t.entry for t in transfers if t.entry]
    if request.checkpoints:
        entries.insert(0, job.executable)  # the wrapper is the executable; the program travels too
    for t in transfers:
        lines.append(f"# {t.note}")
    if entries:
        add("transfer_input_files", ", ".join(entries))
    if job.outputs:
        add("transfer_output_files", ", ".join(job.outputs))
    requirements = list(dict.fromkeys(t.requirement for t in transfers if t.requirement))
    if requirements:
        add("requirements", " && ".join(requirements),
            "the staging area is mounted only on some execute points (one requirements line: a second would replace it)")

    blank("jobs")
    items_file = job.extra.get("items_file")
    if items_file:
        lines.append(f"# one job per line of {items_file}; $(item) holds the line")
        lines.append(f"queue item from {items_file}")
    elif job.queue > 1:
        lines.append(f"# {job.queue} jobs, $(Process) = 0..{job.queue - 1}")
        lines.append(f"queue {job.queue}")
    else:
        lines.append("queue")
    return "\n".join(lines) + "\n"
