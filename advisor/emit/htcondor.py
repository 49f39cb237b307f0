"""The HTCondor submit file: every value with its unit and a comment that says why.

Follows docs/DOMAIN.md §1-§2: `request_memory`/`request_disk`/`gpus_minimum_memory` always carry a unit (a
bare `request_disk` is KiB), the pool's length tier (`+GPUJobLength` on CHTC,
`+JobDurationCategory` on the OSPool), `+is_resumable = true` for backfill, exit-driven
checkpointing (`checkpoint_exit_code = 85` with the wrapper), and each input file sent the way
the pool's data rules say for its size.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import PurePosixPath

from advisor.emit.common import (
    CHECKPOINT_EXIT_CODE,
    EVICTED_EXIT_CODE,
    OUTPUT_DIR,
    WRAPPER_NAME,
    check_job,
    check_request,
    disk_quantity,
    reasons,
    safe_name,
    tier_for,
    timeout_duration,
)
from advisor.emit.quote import (
    comment,
    submit_arguments,
    submit_list,
    submit_name,
    submit_queue_items_file,
    submit_string,
    submit_value,
)
from advisor.errors import InputError
from advisor.request import DataFile, JobSpec, Request
from simulator.pool import Pool

URL_SCHEMES = ("osdf://", "file://", "http://", "https://", "s3://", "stash://", "pelican://")


@dataclass(frozen=True)
class Transfer:
    """How one input reaches the job."""

    source: DataFile
    method: str                 # a DataRule.method, or "url" when the path already is one
    entry: str | None           # what goes into transfer_input_files (None: not transferred)
    requirement: str | None     # a clause the job needs on the execute point
    note: str                   # the comment line


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
        rule = pool.transfer_route(f.size_gb)
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


PROCESS_MACRO = "$(Process)"


def _entry(path: str, field: str) -> str:
    """One transfer list entry; `$(Process)` (a per-job shard's name) stays a macro, any other
    `$` is written literally."""
    parts = [submit_value(p, field) if p else "" for p in path.split(PROCESS_MACRO)]
    text = PROCESS_MACRO.join(parts)
    if "," in text or not text:
        raise InputError(field, path, "is empty or contains a comma, which transfer lists read as a "
                         "separator.", "rename the file without commas.")
    return text


def resumes(request: Request, job: JobSpec) -> bool:
    """The job keeps its checkpoint across an eviction: it checkpoints on a timer (exit 85), or
    its program saves into the checkpoint directory on SIGTERM (`JobSpec.extra["resumes"]`)."""
    return request.checkpoints or bool(job.extra.get("resumes"))


def execute_limit_hours(request: Request, job: JobSpec, tier_hours: float | None) -> float | None:
    """`allowed_execute_duration` in hours for a job that does not checkpoint: twice its longest
    predicted run, at least an hour, in whole hours; None when that is not below the tier's limit
    (or nothing was predicted)."""
    if request.checkpoints or not job.expected_runtime_hours or job.expected_runtime_hours <= 0:
        return None
    hours = float(max(1, math.ceil(2 * job.expected_runtime_hours)))
    return hours if tier_hours is None or hours < tier_hours else None


def submit_file_name(job: JobSpec) -> str:
    return f"{safe_name(job.name)}.sub"


def resource_commands(request: Request) -> list[tuple[str, str, str, str]]:
    """The resource commands of `request` in submit-file order: (command, the Request field it
    writes, the value with its unit, a note). GPU commands only for a GPU job."""
    out = [("request_cpus", "request_cpus", str(request.request_cpus),
            "CPU cores for the program and its data loading (HTCondor's default is 1)"),
           ("request_memory", "request_memory_mb", f"{request.request_memory_mb}MB",
            "host RAM, not GPU memory")]
    if request.retry_request_memory_mb is not None:
        out.append(("retry_request_memory", "retry_request_memory_mb",
                    f"{request.retry_request_memory_mb}MB",
                    "host RAM for a re-run after the job went over request_memory"))
    out.append(("request_disk", "request_disk_mb", disk_quantity(request.request_disk_mb),
                "scratch disk for inputs, outputs and checkpoints"))
    if request.request_gpus > 0:
        out.append(("request_gpus", "request_gpus", str(request.request_gpus), ""))
        if request.gpus_minimum_capability is not None:
            out.append(("gpus_minimum_capability", "gpus_minimum_capability",
                        f"{request.gpus_minimum_capability:.1f}",
                        "CUDA compute capability floor: any GPU at least this new may run the job"))
        if request.gpus_maximum_capability is not None:
            out.append(("gpus_maximum_capability", "gpus_maximum_capability",
                        f"{request.gpus_maximum_capability:.1f}", "CUDA compute capability ceiling"))
        if request.gpus_minimum_memory_mb is not None:
            out.append(("gpus_minimum_memory", "gpus_minimum_memory_mb",
                        f"{request.gpus_minimum_memory_mb}MB",
                        "GPU memory floor, per GPU (separate from request_memory, which is host RAM)"))
    return out


def resource_lines(request: Request, fields: Collection[str]) -> list[str]:
    """`command = value` for the resource commands that write one of the Request `fields`
    (e.g. the values `advisor logs` sized), as in the submit file."""
    return [f"{command} = {value}" for command, name, value, _ in resource_commands(request)
            if name in fields]


def render_htcondor(request: Request, job: JobSpec, pool: Pool) -> str:
    """The submit file text for `job` with `request` on `pool`."""
    check_request(request)
    check_job(job, request)
    why = reasons(job)
    tier = tier_for(request, pool)
    lines: list[str] = []

    def add(command: str, value: object, note: str | None = None, alias: str | None = None) -> None:
        reason = why.get(command) or (why.get(alias) if alias else None)
        text = "; ".join(t for t in (reason, note) if t)
        if text:
            lines.append(f"# {comment(text)}")
        lines.append(f"{command} = {value}")

    def blank(title: str) -> None:
        if lines:
            lines.append("")
        lines.append(f"# --- {comment(title)} ---")

    name = safe_name(job.name)
    lines.append(comment(f"# HTCondor submit file for {job.name}, written by advisor for pool {pool.name!r}."))
    lines.append(comment(f"# Review it with `advisor check {name}.sub --pool {pool.name}` before condor_submit."))

    blank("what runs")
    if request.checkpoints:
        add("executable", WRAPPER_NAME,
            f"the checkpoint wrapper runs {job.executable} under `timeout "
            f"{timeout_duration(request.checkpoint_interval_minutes or 0)}` and exits "
            f"{CHECKPOINT_EXIT_CODE} when the time is up")
    else:
        add("executable", submit_value(job.executable, "executable"))
    queue_from = job.extra.get("queue_from") or {}
    qvars = [submit_name(str(v), "queue_from.vars") for v in queue_from.get("vars") or ()]
    if job.arguments:
        add("arguments", submit_arguments(job.arguments))
    elif "trial_args" in qvars:
        add("arguments", '"$(trial_args)"', "each trial's own parameters, from its line of the queue file")
    if job.container_image:
        for step in job.extra.get("image_steps") or ():
            lines.append(f"# make the image once: {comment(step)}")
        add("container_image", submit_value(job.container_image, "container_image"),
            str(job.extra.get("image_note") or "the software environment, with a pinned tag"))
    env = []
    if job.queue > 1:
        env.append("ADVISOR_JOB_INDEX=$(Process)")
    if job.queue > 1 and job.items_per_job > 1:
        env.append(f"ADVISOR_ITEMS_PER_JOB={job.items_per_job}")
    if "trial_id" in qvars:
        env.append("ADVISOR_TRIAL_ID=$(trial_id)")
    if env:
        note = (f"job $(Process) handles items [index*{job.items_per_job}, (index+1)*{job.items_per_job})"
                if job.items_per_job > 1 else "each job's index (and trial), for its own input and output")
        add("environment", '"' + " ".join(env) + '"', note)

    blank("logs: $(Cluster)_$(Process) keeps each job's files apart")
    add("log", f"{name}_$(Cluster)_$(Process).log",
        "the job's event log (starts, evictions, holds, memory used): read them with `advisor logs`")
    add("output", f"{name}_$(Cluster)_$(Process).out")
    add("error", f"{name}_$(Cluster)_$(Process).err")

    blank("resources per job (units written out: a bare request_disk is KiB, a bare request_memory MB)")
    for command, _, value, note in resource_commands(request):
        add(command, value, note)

    if pool.tier_attribute and tier is not None:
        blank("length tier")
        limit = f"jobs running past {tier.max_hours:g} h are held"
        per_user = tier.per_user_limit(pool.shared_gpus)
        if per_user is not None:
            limit += f"; at most {per_user} GPUs per user at once"
        default = " (the pool's default)" if tier.default else ""
        add(submit_name(pool.tier_attribute, "pool.tier_attribute"), submit_string(tier.name, "tier name"),
            f"tier {tier.name}{default}: {limit} ({tier.source or pool.name})", alias="job_length")

    duration = execute_limit_hours(request, job, tier.max_hours if tier else None)
    if duration is not None:
        add("allowed_execute_duration", int(duration * 3600),
            f"{duration:g} h, at least twice the longest predicted run ({job.expected_runtime_hours:.2g} h): "
            "a job still running then is held (code 47) instead of holding its GPU to the tier's limit")

    if request.is_resumable or request.checkpoints:
        blank("backfill")
        owned = pool.total_gpus - pool.shared_gpus
        where = (f"also on the {owned} GPUs research groups own, as backfill that may be "
                 "interrupted at any time (no 72 h guarantee)") if owned else (
                 "may be interrupted and restarted (this pool has no owned GPUs to backfill)")
        why_resumable = ("" if request.is_resumable else
                         "the job checkpoints, so it can resume: at its tier's limit it is requeued "
                         "instead of held; ")
        add("+is_resumable", "true", f"{why_resumable}may run {where}; with the underscore: IsResumable "
            "is another attribute", alias="is_resumable" if request.is_resumable else None)

    if request.checkpoints:
        blank("checkpointing (CHTC checkpointing.md)")
        interval = timeout_duration(request.checkpoint_interval_minutes or 0)
        add("checkpoint_exit_code", CHECKPOINT_EXIT_CODE,
            f"exit {CHECKPOINT_EXIT_CODE} = checkpoint taken: HTCondor saves the files below and "
            f"restarts the job (every {interval})", alias="checkpoint_interval_minutes")
        add("transfer_checkpoint_files", submit_list(job.checkpoint_files, "checkpoint_files"),
            "the checkpoint, saved at each exit 85 and brought back on restart (created by the "
            "wrapper before the first exit 85: a missing path holds the job, code 36)")

    blank("files")
    add("should_transfer_files", "YES", "the execute point has no shared file system with the access point")
    keep = resumes(request, job)
    if keep:
        wrapper = f" (the wrapper then exits {EVICTED_EXIT_CODE}, never 85)" if request.checkpoints else ""
        add("when_to_transfer_output", "ON_EXIT_OR_EVICT",
            "at an eviction HTCondor also takes back the output and the checkpoint the program wrote "
            f"on SIGTERM{wrapper}; without it that checkpoint is lost")
    else:
        add("when_to_transfer_output", "ON_EXIT")
    transfers = plan_transfers(job, pool)
    entries = [t.entry for t in transfers if t.entry]
    if request.checkpoints:
        entries.insert(0, job.executable)  # the wrapper is the executable; the program travels too
    for t in transfers:
        lines.append(f"# {comment(t.note)}")
    if entries:
        add("transfer_input_files", ", ".join(_entry(e, f"transfer_input_files[{i}]")
                                               for i, e in enumerate(entries)))
    outputs = list(job.outputs)
    if keep:
        outputs += [f for f in job.checkpoint_files if f not in outputs]
    if outputs:
        add("transfer_output_files", submit_list(outputs, "outputs"),
            "every entry must exist when the job ends (else it is held, code 12): run.sh creates them first"
            if keep or OUTPUT_DIR in outputs else None)
    remap = job.extra.get("output_remap")
    if remap and OUTPUT_DIR in outputs:
        add("transfer_output_remaps", '"' + submit_value(f"{OUTPUT_DIR} = {remap}", "output_remap",
                                                         macros=True) + '"',
            str(job.extra.get("output_remap_note") or "the output goes to the staging area, not /home"))
    requirements = list(dict.fromkeys(t.requirement for t in transfers if t.requirement))
    if requirements:
        add("requirements", submit_value(" && ".join(requirements), "requirements", macros=True),
            "the staging area is mounted only on some execute points (one requirements line: a second would replace it)")

    blank("jobs")
    items_file = job.extra.get("items_file")
    max_idle = job.extra.get("max_idle")
    if isinstance(max_idle, int) and max_idle > 0:
        add("max_idle", max_idle, str(job.extra.get("max_idle_note") or
                                      "late materialization: at most this many idle jobs in the queue at once"))
    if queue_from.get("file") and qvars:
        qfile = submit_queue_items_file(str(queue_from["file"]))
        lines.append(f"# {job.queue} jobs, one per line of {qfile} ({', '.join(qvars)})")
        lines.append(f"queue {', '.join(qvars)} from {qfile}")
    elif items_file:
        items = submit_queue_items_file(str(items_file))
        lines.append(f"# one job per line of {items}; $(item) holds the line")
        lines.append(f"queue item from {items}")
    elif job.queue > 1:
        lines.append(f"# {job.queue} jobs, $(Process) = 0..{job.queue - 1}")
        lines.append(f"queue {job.queue}")
    else:
        lines.append("queue")
    return "\n".join(lines) + "\n"
