"""The Slurm batch script: the same request in `#SBATCH` directives, for a site that runs Slurm.

Many jobs become a job array, each task in its own folder (its own `checkpoints/` and `output/`).
A job that keeps a checkpoint runs with `--requeue` and `--signal=B:TERM@N`: N seconds before the
time limit (and on preemption) the batch shell gets SIGTERM, passes it on to the program, which
saves its checkpoint, and requeues itself. A checkpointing job runs the same wrapper as on
HTCondor (`checkpoint_wrapper.sh`): its exit 85 at the end of an interval also requeues the job.
"""

from __future__ import annotations

from advisor.emit.common import (
    CHECKPOINT_EXIT_CODE,
    CHECKPOINT_GRACE_SECONDS,
    EVICTED_EXIT_CODE,
    WRAPPER_NAME,
    check_job,
    check_request,
    program_path,
    reasons,
    runtime_limit_hours,
    safe_name,
    slurm_time,
)
from advisor.emit.htcondor import resumes
from advisor.emit.quote import comment, shell_quote, shell_words
from advisor.request import JobSpec, Request
from simulator.pool import Pool

# Seconds before the wall-time limit at which Slurm signals the batch shell (--signal=B:TERM@N):
# the program's time to save its checkpoint, as the wrapper gives it.
SIGNAL_LEAD_SECONDS = CHECKPOINT_GRACE_SECONDS


def _word(path: str) -> str:
    """A file name as a shell word; HTCondor's `$(Process)` becomes the task's index."""
    return '"${ADVISOR_JOB_INDEX}"'.join(shell_quote(p) if p else "" for p in path.split("$(Process)"))


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
    resumable = resumes(request, job)
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
        directive("--requeue", "the job may be preempted and requeued; it resumes from its checkpoint")
        directive("--open-mode=append", "a requeued run adds to the .out/.err files (Slurm "
                  "truncates them by default, losing the earlier runs' output)")
        directive(f"--signal=B:TERM@{SIGNAL_LEAD_SECONDS}",
                  f"SIGTERM to this script {SIGNAL_LEAD_SECONDS} s before the time limit: the program saves "
                  "its checkpoint and the job requeues itself")
    out.append("")
    out.append("set -u")
    if array:
        out.append('export ADVISOR_JOB_INDEX="${SLURM_ARRAY_TASK_ID:-0}"')
        if job.items_per_job > 1:
            out.append(f"export ADVISOR_ITEMS_PER_JOB={job.items_per_job}")
        local = [job.executable] + ([WRAPPER_NAME] if request.checkpoints else []) + [
            f.path for f in job.inputs if "://" not in f.path]
        out += ["# Each task in its own folder: its own checkpoints/ and output/, the job's files linked in.",
                'task_dir="${SLURM_SUBMIT_DIR:-$PWD}/task_${ADVISOR_JOB_INDEX}"',
                'mkdir -p "$task_dir" && cd "$task_dir"',
                f"for f in {' '.join(_word(p) for p in local)}; do",
                '    [ -e "../$f" ] && ln -sf "../$f" .',
                "done"]
    if job.container_image:
        out.append(f"# container image in the HTCondor file: {comment(job.container_image)}")
        out.append("# (run the program inside it with your site's tool, e.g. apptainer exec IMAGE ./run.sh)")
    for f in job.inputs:
        out.append(f"# input: {comment(f.path)} ({f.size_gb:g} GB): stage it where the job can read it")

    program = shell_quote(program_path(WRAPPER_NAME if request.checkpoints else job.executable))
    args = shell_words(job.arguments, "arguments")
    command = f"{program} {args}".rstrip()
    if not resumable:
        out.append(f"exec srun {command}")
        return "\n".join(out) + "\n"
    out.extend([
        "# The program runs in the background so that this script can pass Slurm's SIGTERM on to it",
        "# (bash does not forward signals to a foreground child); it saves its checkpoint in checkpoints/.",
        'if [ -n "${SLURM_ARRAY_JOB_ID:-}" ]; then',
        '    self="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
        "else",
        '    self="${SLURM_JOB_ID:-}"',
        "fi",
        "stopping=0",
        f"{command} &",
        "child=$!",
        'trap \'stopping=1; kill -TERM "$child" 2>/dev/null\' TERM',
        "status=0",
        'wait "$child" || status=$?',
        'while kill -0 "$child" 2>/dev/null; do wait "$child" || status=$?; done',
        f'if [ "$status" -eq {CHECKPOINT_EXIT_CODE} ] || [ "$status" -eq {EVICTED_EXIT_CODE} ] || [ "$stopping" -eq 1 ]; then',
        '    echo "advisor: requeueing $self to resume from the checkpoint" >&2',
        '    scontrol requeue "$self"',
        "    exit 0",
        "fi",
        'exit "$status"',
    ])
    return "\n".join(out) + "\n"
