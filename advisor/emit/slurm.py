"""The Slurm batch script: the same request in `#SBATCH` directives, for a site that runs Slurm.

Many jobs become a job array; checkpointing becomes `timeout` per interval plus a self-requeue,
with `--signal=B:USR1@120` as the early warning before the wall-time limit.
"""

from __future__ import annotations

from advisor.emit.common import (
    CHECKPOINT_GRACE_SECONDS,
    TIMEOUT_EXIT_CODE,
    check_job,
    check_request,
    program_path,
    reasons,
    runtime_limit_hours,
    safe_name,
    slurm_time,
    timeout_duration,
)
from advisor.emit.quote import comment, shell_quote, shell_words
from advisor.request import JobSpec, Request
from simulator.pool import Pool

# Seconds before the wall-time limit at which Slurm signals the batch shell (--signal=B:USR1@N).
SIGNAL_LEAD_SECONDS = 120


def script_file_name(job: JobSpec) -> str:
    return f"{safe_name(job.name)}.sbatch"


def render_slurm(request: Request, job: JobSpec, pool: Pool) -> str:
    """A bash script with `#SBATCH` directives; `sbatch` it."""
    check_request(request)
    check_job(job, request)
    why = reasons(job)
    name = safe_name(job.name)
    array = job.queue > 1
    log_stem = f"{name}_%A_%a" if array else f"{name}_%j"
    resumable = request.is_resumable or request.checkpoints
    hours = runtime_limit_hours(request, job, pool)

    out: list[str] = ["#!/bin/bash"]

    def directive(option: str, note: str | None = None, key: str | None = None) -> None:
        reason = why.get(key) if key else None
        text = "; ".join(t for t in (reason, note) if t)
        if text:
            out.append(f"# {comment(text)}")
        out.append(f"#SBATCH {option}")

    out.append(comment(f"# Slurm batch script for {job.name}, written by advisor "
                       f"(the request chosen for pool {pool.name!r}, translated to Slurm)."))
    directive(f"--job-name={name}")
    directive(f"--output={log_stem}.out")
    directive(f"--error={log_stem}.err")
    directive("--ntasks=1", "one task per job; its CPUs below")
    directive(f"--cpus-per-task={request.request_cpus}", key="request_cpus")
    directive(f"--mem={request.request_memory_mb}M", "host RAM per job, in MB", key="request_memory")
    directive(f"--tmp={request.request_disk_mb}M", "local scratch disk per node, in MB", key="request_disk")
    if request.request_gpus > 0:
        directive(f"--gres=gpu:{request.request_gpus}", key="request_gpus")
        if request.gpus_minimum_capability is not None or request.gpus_minimum_memory_mb is not None:
            wants = []
            if request.gpus_minimum_capability is not None:
                wants.append(f"compute capability >= {request.gpus_minimum_capability:.1f}")
            if request.gpus_minimum_memory_mb is not None:
                wants.append(f"GPU memory >= {request.gpus_minimum_memory_mb} MB")
            out.append(f"# The job needs a GPU with {' and '.join(wants)}. Slurm has no generic")
            out.append("# option for that: ask your site for its GPU feature names, e.g.")
            out.append("##SBATCH --constraint=a100|h100")
    if hours is not None:
        directive(f"--time={slurm_time(hours)}",
                  f"wall-time limit ({hours:g} h: the length tier's limit or the job's own)")
    if array:
        directive(f"--array=0-{job.queue - 1}",
                  f"{job.queue} jobs; $SLURM_ARRAY_TASK_ID = 0..{job.queue - 1} (HTCondor's $(Process))")
    if resumable:
        directive("--requeue", "the job may be preempted and requeued; it must resume from its checkpoint")
    if request.checkpoints:
        directive(f"--signal=B:USR1@{SIGNAL_LEAD_SECONDS}",
                  f"checkpoint trigger: USR1 to this script {SIGNAL_LEAD_SECONDS} s before the time limit")
    out.append("")
    out.append("set -u")
    if array:
        out.append('export ADVISOR_JOB_INDEX="${SLURM_ARRAY_TASK_ID:-0}"')
        if job.items_per_job > 1:
            out.append(f"export ADVISOR_ITEMS_PER_JOB={job.items_per_job}")
    if job.container_image:
        out.append(f"# container image in the HTCondor file: {comment(job.container_image)}")
        out.append("# (run the program inside it with your site's tool, e.g. apptainer exec IMAGE ...)")
    for f in job.inputs:
        out.append(f"# input: {comment(f.path)} ({f.size_gb:g} GB): stage it where the job can read it")

    program = shell_quote(program_path(job.executable))
    args = shell_words(job.arguments, "arguments")
    command = f"{program} {args}".rstrip()
    if not request.checkpoints:
        out.append(f"srun {command}")
        return "\n".join(out) + "\n"

    interval = timeout_duration(request.checkpoint_interval_minutes or 0)
    files = comment(", ".join(job.checkpoint_files))
    out.extend([
        f"# Checkpointing: the program runs for at most {interval} at a time; it must write its",
        f"# checkpoint ({files}) regularly or on SIGTERM. When the interval ends (timeout exits",
        f"# {TIMEOUT_EXIT_CODE}) or Slurm signals USR1 before the time limit, the job requeues itself and",
        "# the next run resumes from the checkpoint.",
        'if [ -n "${SLURM_ARRAY_JOB_ID:-}" ]; then',
        '    self="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
        "else",
        '    self="${SLURM_JOB_ID:-}"',
        "fi",
        "requeue() {",
        '    echo "advisor: requeueing $self to resume from the checkpoint" >&2',
        '    scontrol requeue "$self"',
        "    exit 0",
        "}",
        'trap \'kill -TERM "$child" 2>/dev/null; wait "$child"; requeue\' USR1',
        f"timeout --kill-after={CHECKPOINT_GRACE_SECONDS}s {interval} srun {command} &",
        "child=$!",
        'wait "$child"',
        "status=$?",
        f'if [ "$status" -eq {TIMEOUT_EXIT_CODE} ]; then',
        "    requeue",
        "fi",
        'exit "$status"',
    ])
    return "\n".join(out) + "\n"
