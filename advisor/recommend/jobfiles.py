"""The job a recommendation writes: what each job receives and returns (its data plan), the image it
runs in, `run.sh`, and the files `advisor recommend -o DIR` writes.

The data plan (docs/DOMAIN.md, CHTC data rules and quotas):
* each job its own input: batched work gets one shard per job, named by `$(Process)`; a sweep's
  jobs share the dataset and each gets its own parameters from a queue file (`queue trial_id,
  trial_args from trials.txt`);
* every input file goes the way the pool's data rules say for its size (`Pool.transfer_route`):
  /home, OSDF, /staging, or "talk to a facilitator", which is said in the reasons, in the submit
  file and by run.sh, never dropped silently;
* the whole dataset and the campaign's total output are checked against the pool's quotas
  (`storage:` in the pool file): inputs too large for /home move to /staging; outputs too large
  for /home go to /staging through `transfer_output_remaps`; beyond /staging (size or number of
  files): a facilitator;
* above MAX_IDLE_ABOVE_JOBS jobs the submit file limits the idle jobs (`max_idle`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advisor.check.secrets import SECRETS_DIR, scrub_args, secret_file_help, secret_names
from advisor.emit import write_files
from advisor.emit.common import CHECKPOINT_DIR, EVICTION_GRACE_SECONDS, OUTPUT_DIR
from advisor.emit.container import job_image
from advisor.emit.htcondor import PROCESS_MACRO, resumes
from advisor.emit.quote import comment, secrets_read, shell_quote
from advisor.output import atomic_write, error_line
from advisor.recommend.sizing import Sizing
from advisor.request import DataFile, JobSpec, Request
from advisor.workload import Workload, script_text
from simulator.pool import DataRule, Pool, Tier, load_pool

# Above this many jobs, late materialization keeps the queue small (HTCondor manual, `max_idle`;
# the OSPool allows at most 10,000 queued jobs per user): at most MAX_IDLE idle at once.
MAX_IDLE_ABOVE_JOBS = 10_000
MAX_IDLE = 1_000
TRIALS_FILE = "trials.txt"
# A campaign that would hold the user's per-user GPU limit for more than this long is worth a talk
# with a facilitator (they can raise limits, reserve GPUs or suggest a different plan).
FACILITATOR_HOURS_AT_LIMIT = 168.0


@dataclass
class DataPlan:
    """Where each input comes from and where the output goes, with the quota checks."""

    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    facilitator: list[str] = field(default_factory=list)    # what needs one, each with why
    notes: list[str] = field(default_factory=list)
    gpu_hours: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "outputs": self.outputs, "facilitator": self.facilitator,
                "notes": self.notes, "gpu_hours": round(self.gpu_hours, 1)}


def _gb(x: float) -> str:
    return f"{x:,.0f} GB" if x >= 100 else f"{x:.3g} GB"


def _area(rule: DataRule | None) -> str:
    if rule is None or rule.method == "transfer_input_files":
        return "home"
    return "facilitator" if rule.method == "facilitator" else "staging"


def _quota(pool: Pool, area: str) -> tuple[float | None, float | None, str]:
    q = pool.storage.get(area) or {}
    return q.get("quota_gb"), q.get("quota_files"), str(q.get("source") or "")


def _staging_rule(pool: Pool) -> DataRule | None:
    """The data rule whose URL puts a file in the user's staging/OSDF area."""
    return next((r for r in sorted(pool.data_rules, key=lambda r: r.max_gb or math.inf)
                 if r.method in ("osdf", "staging") and "://" in r.how), None)


def _url_dir(rule: DataRule) -> str:
    from advisor.emit.htcondor import _url_from_how
    url = _url_from_how(rule.how, "FILE", None) or ""
    return url.rsplit("/", 1)[0]


def _fits(pool: Pool, area: str, total_gb: float, files: int) -> str | None:
    """Why `files` files of `total_gb` in all do not fit `area`'s quota (None: they fit or the
    pool file states no quota)."""
    gb, count, source = _quota(pool, area)
    where = f"/{area}"
    if gb is not None and total_gb > gb:
        return f"{_gb(total_gb)} exceeds {where}'s {gb:g} GB quota ({source})"
    if count is not None and files > count:
        return f"{files:,} files exceed {where}'s {count:g}-file quota ({source})"
    return None


def plan_inputs(workload: Workload, pool: Pool, items: int, jobs: int, sweep: bool,
                plan: DataPlan) -> tuple[DataFile, ...]:
    """The job's inputs, each routed by size and checked against the quotas."""
    per = workload.per_task
    out: list[DataFile] = []
    data: list[tuple[DataFile, int]] = []     # (file, copies stored at the access point)
    if workload.profile_data is not None:
        script = str(workload.profile_data.get("script", "train.py"))
        out.append(DataFile(Path(script).name, 0.0001))
        if secret_names(scrub_args([str(a) for a in workload.profile_data.get("args") or []])[0]):
            out.append(DataFile(SECRETS_DIR, 0.0))   # the files run.sh reads the secrets from
        d = workload.profile_data.get("data") or {}
        if d.get("bytes"):
            data.append((DataFile(Path(str(d.get("path") or "data")).name + ".tar.gz",
                                  float(d["bytes"]) / 1e9), 1))
    elif per.input_gb > 0:
        if sweep:     # every trial reads the same dataset
            data.append((DataFile(f"{workload.name}_data.tar.gz", per.input_gb), 1))
        elif jobs > 1:   # one shard per job
            data.append((DataFile(f"{workload.name}_inputs_{PROCESS_MACRO}.tar.gz", items * per.input_gb), jobs))
        else:
            data.append((DataFile(f"{workload.name}_inputs.tar.gz", items * per.input_gb), 1))
    if workload.shared_input_gb > 0 and not workload.container:
        data.append((DataFile("model.tar.gz", workload.shared_input_gb), 1))
    staging = _staging_rule(pool)
    for f, copies in data:
        rule = pool.transfer_route(f.size_gb)
        area = _area(rule)
        total = f.size_gb * copies
        if f.path.startswith(workload.name) and workload.dataset_gb:
            total = max(total, workload.dataset_gb)
        entry: dict[str, Any] = {"file": f.path, "size_gb": f.size_gb, "copies": copies,
                                 "total_gb": round(total, 4), "route": rule.method if rule else "transfer_input_files"}
        path = f.path
        if area == "home":
            over = _fits(pool, "home", total, copies)
            if over and staging is not None and (pool.storage.get("staging") or {}).get("mounted_on_execute_points", True):
                plan.notes.append(f"{f.path}: {over}: placed in the staging area and sent from there")
                path = f"{_url_dir(staging)}/{f.path}"
                area, entry["route"] = "staging", staging.method
        if area == "staging":
            over = _fits(pool, "staging", total, copies)
            if over:
                plan.facilitator.append(f"input {f.path}: {over}: talk to a facilitator about where "
                                        "the dataset can live (or pack fewer, larger shards)")
                entry["facilitator"] = over
        elif area == "facilitator":
            why = f"{f.size_gb:g} GB per file is more than {pool.possessive} data rules move ({rule.how if rule else ''})"
            plan.facilitator.append(f"input {f.path}: {why}: talk to a facilitator; the job "
                                    "files name it but do not transfer it, and run.sh stops if it is missing")
            entry["facilitator"] = why
        entry["area"] = area
        plan.inputs.append(entry)
        out.append(DataFile(path, f.size_gb))
    return tuple(out)


def plan_outputs(workload: Workload, pool: Pool, items: int, jobs: int, plan: DataPlan) -> str | None:
    """Where the output goes: back to the submit folder (/home), or to staging through
    transfer_output_remaps (returned: the remap target), or a facilitator."""
    per_job = items * workload.per_task.output_gb
    total = per_job * jobs
    plan.outputs = {"per_job_gb": round(per_job, 4), "total_gb": round(total, 4), "area": "home"}
    rule = pool.transfer_route(per_job) if per_job > 0 else None
    over_home = _fits(pool, "home", total, 0)
    if _area(rule) == "home" and not over_home:
        return None
    staging = _staging_rule(pool)
    over = _fits(pool, "staging", total, jobs) if staging is not None else "the pool has no staging area"
    if over:
        plan.facilitator.append(f"output: {_gb(total)} from {jobs:,} jobs; {over}: talk to a "
                                "facilitator about where the results can go")
        plan.outputs["area"] = "facilitator"
        return None
    plan.outputs["area"] = "staging"
    return f"{_url_dir(staging)}/{workload.name}_output_{PROCESS_MACRO}"   # type: ignore[arg-type]


def _can_resume(workload: Workload, request: Request) -> bool:
    """The program keeps a checkpoint in ADVISOR_CHECKPOINT_DIR: a timed checkpoint, or a profiled
    script that reads the variable, or a hand-written workload that can checkpoint."""
    if request.checkpoints:
        return True
    if workload.profile_data is None:
        return workload.can_checkpoint
    found = script_text(workload)
    return found is not None and "ADVISOR_CHECKPOINT_DIR" in found[1]


def plan_job(workload: Workload, pool: Pool, request: Request, sizing: Sizing, items: int, jobs: int,
             job_hours: float, tier: Tier | None, why: dict[str, str]) -> tuple[JobSpec, DataPlan]:
    """The JobSpec the emitters write for the chosen request, and its data plan."""
    plan = DataPlan()
    sweep = workload.kind == "training" and jobs > 1 and items == 1
    inputs = plan_inputs(workload, pool, items, jobs, sweep, plan)
    remap = plan_outputs(workload, pool, items, jobs, plan)
    image = job_image(pool, jobs, workload.container, sizing.build)
    extra: dict[str, Any] = {"reasons": why, "image_note": image.note, "data_plan": plan.to_dict(),
                             "resumes": _can_resume(workload, request)}
    if image.build_steps:
        extra["image_steps"] = list(image.build_steps)
        extra["oci_image"] = image.build_steps[0].split()[-1].removeprefix("docker://")
    for key, what in (("transfer_input_files", "input"), ("transfer_output_files", "output")):
        said = [f for f in plan.facilitator if f.startswith(what)]
        if said:
            why[key] = "TALK TO A FACILITATOR: " + "; ".join(said)
    if remap:
        extra["output_remap"] = remap
        extra["output_remap_note"] = (f"{_gb(plan.outputs['total_gb'])} of output in all: too much for "
                                      "/home, so each job's output goes to the staging area")
    if sweep:
        extra["queue_from"] = {"file": TRIALS_FILE, "vars": ("trial_id", "trial_args")}
        extra["trials"] = [(i, f"--trial-id {i}") for i in range(jobs)]
    if jobs > MAX_IDLE_ABOVE_JOBS:
        extra["max_idle"] = MAX_IDLE
        extra["max_idle_note"] = (f"{jobs:,} jobs: at most {MAX_IDLE:,} idle at once (late materialization, "
                                  "HTCondor manual; the OSPool allows 10,000 queued jobs per user); "
                                  "a DAG of smaller submits works too")
    if workload.per_task.gpus > 1:
        extra["launcher"] = {"nproc": workload.per_task.gpus}
    plan.gpu_hours = jobs * job_hours * max(1, workload.per_task.gpus)
    limit = pool.user_gpu_limit(tier)
    if limit and plan.gpu_hours > limit * FACILITATOR_HOURS_AT_LIMIT:
        plan.facilitator.append(
            f"the campaign is up to {plan.gpu_hours:,.0f} GPU-hours: more than a week at your per-user "
            f"limit of {limit} GPUs; talk to a facilitator before submitting it")
    job = JobSpec(name=workload.name, executable="run.sh", queue=jobs, items_per_job=items,
                  inputs=inputs, container_image=image.value, outputs=(OUTPUT_DIR,),
                  checkpoint_files=(CHECKPOINT_DIR,), expected_runtime_hours=job_hours,
                  max_runtime_hours=tier.max_hours if tier else None, extra=extra)
    return job, plan


# --- run.sh ------------------------------------------------------------------------------------

def render_run_sh(job: JobSpec, command: str | None, data_dir: str | None) -> tuple[str, list[str]]:
    """run.sh's text and the secret names it reads."""
    lines = ["#!/bin/bash", "# Written by advisor recommend: what one job runs, in the job's sandbox.",
             "set -euo pipefail",
             f"# {CHECKPOINT_DIR}/ and {OUTPUT_DIR}/ exist before anything else: HTCondor holds a job whose "
             "transfer_output_files or",
             "# transfer_checkpoint_files are missing. The program reads where to write from the variables.",
             f"mkdir -p {CHECKPOINT_DIR} {OUTPUT_DIR}",
             f"export ADVISOR_CHECKPOINT_DIR={CHECKPOINT_DIR} ADVISOR_OUTPUT_DIR={OUTPUT_DIR}"]
    secrets = secrets_read(command or "")
    if secrets:   # read at run time from files the user creates; never written here
        files = " ".join(f"{SECRETS_DIR}/{n}" for n in secrets)
        lines += ["# The script's secret arguments are read at run time from files you create,",
                  f"# readable only by you (the submit file sends the {SECRETS_DIR} folder with the job):",
                  f"#   mkdir -p {SECRETS_DIR} && chmod 700 {SECRETS_DIR}",
                  *(f"#   (umask 077; cat > {SECRETS_DIR}/{n})   # paste the value, then Ctrl-D" for n in secrets),
                  f"for f in {files}; do",
                  '    [ -r "$f" ] || { echo "run.sh: $f is missing: create it (chmod 600), see the comments in run.sh" >&2; exit 1; }',
                  "done"]
    plan = job.extra.get("data_plan") or {}
    for entry in plan.get("inputs") or []:
        if entry.get("area") == "facilitator":
            name = _local(str(entry["file"]))
            lines += [comment(f"# {entry['file']}: {entry['facilitator']}: it reaches the job as agreed with a facilitator."),
                      f"[ -e {name} ] || {{ echo {shell_quote('run.sh: ' + str(entry['file']) + ' is not in the sandbox: arrange its transfer with a facilitator')} >&2; exit 1; }}"]
    for f in job.inputs:
        base = f.path.rsplit("/", 1)[-1]
        if base.endswith(".tar.gz") and base != "model.tar.gz":
            source = data_dir or "DATA_DIR"
            parent, leaf = (str(Path(source).parent), Path(source).name) if data_dir else (".", "DATA_DIR")
            lines += [comment(f"# {base}: made where you ran the script with "
                              f"`tar czf {shell_quote(base)} -C {shell_quote(parent)} {shell_quote(leaf)}` "
                              "(relative paths: it unpacks here)")
                      if data_dir else comment(f"# {base}: this job's input, an archive with relative paths"),
                      f"tar -xzf {_local(base)}"]
    launcher = job.extra.get("launcher")
    if not command:
        lines += ["# The command of one task: replace the two lines below with e.g.",
                  '#   exec python3 YOUR_SCRIPT.py --input . --output "$ADVISOR_OUTPUT_DIR" "$@"',
                  "# (exec: HTCondor's SIGTERM must reach the program, which then saves its checkpoint).",
                  'echo "advisor: put the command of one task here (see the comments in run.sh)" >&2',
                  "exit 1"]
    elif launcher:
        nproc = int(launcher.get("nproc") or 1)
        program = command.removeprefix("python3 ")
        lines += ["# torchrun turns a worker's exit 85 into exit 1 and kills workers ~30 s after SIGTERM",
                  "# (docs/DOMAIN.md): run.sh instead turns HTCondor's SIGTERM into a stop file the workers",
                  "# watch (ADVISOR_STOP_FILE: save the checkpoint, exit), and the wrapper maps the stop to 85.",
                  'export ADVISOR_STOP_FILE="$PWD/.advisor_stop"',
                  'rm -f "$ADVISOR_STOP_FILE"',
                  'trap \'touch "$ADVISOR_STOP_FILE"\' TERM',
                  f"torchrun --standalone --nproc_per_node={nproc} --shutdown-timeout={EVICTION_GRACE_SECONDS} "
                  f'{program} "$@" &',
                  "child=$!",
                  "status=0",
                  'wait "$child" || status=$?',
                  'while kill -0 "$child" 2>/dev/null; do wait "$child" || status=$?; done',
                  '[ -e "$ADVISOR_STOP_FILE" ] && exit 143',
                  'exit "$status"']
    else:
        lines.append(f'exec {command} "$@"')
    return "\n".join(lines) + "\n", secrets


def _local(name: str) -> str:
    """A sandbox file name as a shell word; `$(Process)` becomes the job's index variable."""
    if PROCESS_MACRO not in name:
        return shell_quote(name)
    return '"${ADVISOR_JOB_INDEX}"'.join(shell_quote(p) if p else "" for p in name.split(PROCESS_MACRO))


def write_job_files(rec: Any, pool_ref: str | Path, out_dir: str | Path,
                    target: str = "htcondor") -> list[Path]:
    """The submit file (and wrapper) for the chosen request, `run.sh` that starts one job, and the
    sweep's queue file."""
    if rec.request is None or rec.job is None:
        return []
    pool = load_pool(pool_ref)
    paths = write_files(rec.request, rec.job, pool, out_dir, [target])
    text, secrets = render_run_sh(rec.job, rec.command, rec.data_dir)
    if secrets:
        files = " ".join(f"{SECRETS_DIR}/{n}" for n in secrets)
        error_line(f"warning: run.sh reads {files} at run time (kept out of every written file): "
                   + secret_file_help(secrets))
    paths.append(atomic_write(Path(out_dir) / "run.sh", text, mode=0o755))
    trials = rec.job.extra.get("trials")
    if trials:
        rows = "".join(f"{i}, {args}\n" for i, args in trials)
        paths.append(atomic_write(Path(out_dir) / TRIALS_FILE, rows, mode=0o644))
    rec.files = [str(p) for p in paths]
    return paths


__all__ = ["DataPlan", "MAX_IDLE", "MAX_IDLE_ABOVE_JOBS", "TRIALS_FILE", "plan_job", "render_run_sh",
           "resumes", "write_job_files"]
