"""Slurm's accounting → the same report as HTCondor event logs: what the jobs used against what
they requested, their runs (requeues), exit codes, and what to request next time.

Sources, told apart by their content:
  * `sacct --parsable2` (or `--parsable`) with a header line; best with `--duplicates` (one row
    per requeued run) and the fields of `SACCT_FIELDS`;
  * `sacct --json` (the layouts of Slurm 21.08-22.05 and of 23.02 on: numbers may be
    `{"set": true, "number": N}`, states lists);
  * `scontrol show job [-o]`: requests, state and times, no usage; what a cluster without a
    database (no slurmdbd, `AccountingStorageType=accounting_storage/none`) can tell.
`run_sacct(ids)` runs sacct for job ids (`advisor logs --sacct ID,...`); where accounting storage
is disabled it falls back to `scontrol show job` and says that memory and CPU use are missing.

Per job: CPUs used = TotalCPU / Elapsed (average cores busy, as HTCondor's CpusUsage), memory
used = the largest MaxRSS of its steps (MiB), GPU memory and utilization from TRESUsageInMax /
TRESUsageInAve where the site gathers them. OUT_OF_MEMORY counts as a memory hold and TIMEOUT as
a duration hold, so the findings and the right-sized request are the HTCondor path's.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from advisor.errors import DomainFailure, InputError
from advisor.logs.records import Hold, JobRecord, ParsedLog, Run

SACCT_FIELDS = ("JobID", "JobName", "State", "ExitCode", "ReqCPUS", "AllocCPUS", "ReqMem",
                "ReqTRES", "AllocTRES", "Submit", "Start", "End", "Elapsed", "Timelimit",
                "TotalCPU", "MaxRSS", "TRESUsageInMax", "TRESUsageInAve", "NodeList")
SACCT_TIMEOUT_S = 60.0
_UNITS = {"K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2, "P": 1024.0**3}
_KEY = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_:/]*)=")
# Slurm state → the outcome of the run it ended (HTCondor's vocabulary in advisor.logs.records).
_RUN_OUTCOME = {"COMPLETED": "terminated", "FAILED": "terminated", "REQUEUED": "requeued",
                "PREEMPTED": "evicted", "NODE_FAIL": "evicted", "BOOT_FAIL": "evicted",
                "CANCELLED": "aborted", "TIMEOUT": "held", "OUT_OF_MEMORY": "held",
                "DEADLINE": "aborted"}


@dataclass(slots=True)
class SlurmJob(JobRecord):
    """A JobRecord from Slurm: its state is Slurm's (completed, failed, timeout, ...)."""

    slurm_state: str = ""
    time_limit_s: float | None = None

    @property
    def state(self) -> str:
        return self.slurm_state.lower() if self.slurm_state else JobRecord.state.fget(self)  # type: ignore[attr-defined]


# --- values ------------------------------------------------------------------------------------

def memory_mb(text: Any, cpus: float | None = None) -> float | None:
    """'16G', '4000M', '5120000K', '4000Mc' (per CPU), '16Gn' (per node), a number of MiB."""
    if text is None:
        return None
    s = str(text).strip()
    if not s or s in ("0n", "0c") or s.lower() in ("unknown", "n/a", "none"):
        return None
    per_cpu = s.endswith("c")
    s = s.rstrip("nc")
    m = re.fullmatch(r"([0-9.]+)([KMGTP]?)", s)
    if not m:
        return None
    value = float(m.group(1)) * _UNITS.get(m.group(2) or "M", 1.0)
    return value * (cpus or 1) if per_cpu else value


def seconds(text: Any) -> float | None:
    """Slurm durations: 'D-HH:MM:SS', 'HH:MM:SS', 'MM:SS.mmm', a number of seconds."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip()
    m = re.fullmatch(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)", s)
    if not m:
        return float(s) if re.fullmatch(r"\d+(?:\.\d+)?", s) else None
    d, h, mi, sec = m.groups()
    if d is not None and h is None:      # 'D-HH:MM' is not a Slurm duration; D-MM:SS neither
        h, mi, sec = mi, sec, "0"
    return int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi) * 60 + float(sec)


def timestamp(text: Any) -> float | None:
    if text is None or isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        return float(text) if text > 0 else None
    s = str(text).strip()
    try:
        return datetime.fromisoformat(s).replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


def tres(text: Any) -> dict[str, str]:
    """'billing=4,cpu=4,gres/gpu=1,mem=16G,node=1' → {key: value}."""
    out: dict[str, str] = {}
    for part in str(text or "").split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def exit_status(text: Any) -> tuple[int | None, int | None]:
    """'1:0' → (exit code 1, no signal); '0:15' → (None, signal 15)."""
    m = re.fullmatch(r"(\d+):(\d+)", str(text or "").strip())
    if not m:
        return None, None
    code, sig = int(m.group(1)), int(m.group(2))
    return (None, sig) if sig else (code, None)


def _gpus(t: Mapping[str, str]) -> float | None:
    for key, value in t.items():
        if key == "gres/gpu" or (key.startswith("gres/gpu:") and key.count(":") == 1):
            try:
                return float(value)
            except ValueError:
                return None
    return None


# --- parsing -----------------------------------------------------------------------------------

def parse_scontrol(text: str) -> list[dict[str, str]]:
    """`scontrol show job` (one job per paragraph) or `scontrol show job -o` (one per line)."""
    jobs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [ln for ln in block.splitlines() if ln.strip()]
        one_per_line = all(ln.lstrip().startswith("JobId=") for ln in lines)
        for line in (lines if one_per_line else [" ".join(lines)]):
            keys = list(_KEY.finditer(line))
            d = {}
            for i, m in enumerate(keys):
                end = keys[i + 1].start() if i + 1 < len(keys) else len(line)
                d[m.group(1)] = line[m.end():end].strip()
            if d.get("JobId"):
                jobs.append(d)
    return jobs


def parse_parsable(text: str) -> list[dict[str, str]]:
    """`sacct --parsable2` / `--parsable` rows as dicts keyed by the header."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    header = [h.strip() for h in lines[0].rstrip("|").split("|")]
    if "JobID" not in header:
        raise ValueError("no header line naming JobID (save sacct's output without --noheader)")
    return [dict(zip(header, ln.rstrip("|").split("|"), strict=False)) for ln in lines[1:]]


def _num(v: Any) -> Any:
    """23.02's {"set": true, "number": N} → N (None when not set)."""
    if isinstance(v, Mapping) and "number" in v:
        return v["number"] if v.get("set", True) and not v.get("infinite") else None
    return v


def _state(v: Any) -> str:
    v = v.get("current", "") if isinstance(v, Mapping) else v
    if isinstance(v, list):
        v = v[0] if v else ""
    return str(v or "")


def _tres_list(items: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for t in items or []:
        key = t.get("type", "") + (f"/{t['name']}" if t.get("name") else "")
        count = _num(t.get("count"))
        if count is not None:
            out[key] = float(count)
    return out


def json_rows(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`sacct --json` → rows shaped like the parsable ones (values already numbers)."""
    rows: list[dict[str, Any]] = []
    for job in data.get("jobs") or []:
        t = job.get("time") or {}
        req, alloc = (_tres_list((job.get("tres") or {}).get(k)) for k in ("requested", "allocated"))
        ec = job.get("exit_code") or {}
        code = _num(ec.get("return_code"))
        sig = _num((ec.get("signal") or {}).get("id")) if isinstance(ec.get("signal"), Mapping) else None
        jid = str(job.get("job_id"))
        array = job.get("array") or {}
        task = _num(array.get("task_id"))
        if task is not None and _num(array.get("job_id")):
            jid = f"{_num(array['job_id'])}_{task}"
        total = (t.get("total") or {})
        rows.append({
            "JobID": jid, "JobName": job.get("name"), "State": _state(job.get("state")),
            "exit": (None if sig else code, sig or None), "ReqCPUS": req.get("cpu"),
            "AllocCPUS": alloc.get("cpu"), "ReqMemMB": (req.get("mem")),
            "req_gpus": req.get("gres/gpu"), "alloc_gpus": alloc.get("gres/gpu"),
            "Submit": _num(t.get("submission")), "Start": _num(t.get("start")),
            "End": _num(t.get("end")), "Elapsed": _num(t.get("elapsed")),
            "Timelimit": (None if _num(t.get("limit")) is None else 60 * float(_num(t.get("limit")))),
            "TotalCPU": (_num(total.get("seconds")) or 0) + (_num(total.get("microseconds")) or 0) / 1e6
            if total else None,
        })
        for step in job.get("steps") or []:
            usage = ((step.get("tres") or {}).get("requested") or {})
            peak = _tres_list(usage.get("max"))
            ave = _tres_list(usage.get("average"))
            sid = (step.get("step") or {}).get("id")
            if isinstance(sid, Mapping):   # 23.02: {"job_id": N, "step_id": "batch"}
                sid = f"{sid.get('job_id')}.{sid.get('step_id')}"
            rows.append({"JobID": f"{jid}.{str(sid).split('.', 1)[-1]}",
                         "MaxRSSMB": None if "mem" not in peak else peak["mem"] / 2**20,
                         "gpumem": None if "gres/gpumem" not in peak else peak["gres/gpumem"] / 2**20,
                         "gpuutil": ave.get("gres/gpuutil")})
    return rows


def _row_values(row: Mapping[str, Any]) -> dict[str, Any]:
    """A parsable or scontrol row → the numbers the records need."""
    if "exit" in row or "MaxRSSMB" in row:       # from json_rows: numbers already
        return dict(row)
    if "JobId" in row:                            # scontrol show job
        t = tres(row.get("TRES"))
        cpus = float(row["NumCPUs"]) if row.get("NumCPUs", "").isdigit() else None
        return {"JobID": row["JobId"] if not row.get("ArrayJobId") or not row.get("ArrayTaskId")
                else f"{row['ArrayJobId']}_{row['ArrayTaskId']}",
                "JobName": row.get("JobName"), "State": row.get("JobState", ""),
                "exit": exit_status(row.get("ExitCode")), "ReqCPUS": cpus, "AllocCPUS": cpus,
                "ReqMemMB": memory_mb(t.get("mem")) or memory_mb(row.get("MinMemoryNode")),
                "req_gpus": _gpus(t), "alloc_gpus": _gpus(t),
                "Submit": timestamp(row.get("SubmitTime")), "Start": timestamp(row.get("StartTime")),
                "End": timestamp(row.get("EndTime")), "Elapsed": seconds(row.get("RunTime")),
                "Timelimit": seconds(row.get("TimeLimit")), "TotalCPU": None,
                "restarts": int(row["Restarts"]) if row.get("Restarts", "").isdigit() else 0}
    alloc_cpus = float(row["AllocCPUS"]) if str(row.get("AllocCPUS", "")).isdigit() else None
    req_cpus = float(row["ReqCPUS"]) if str(row.get("ReqCPUS", "")).isdigit() else alloc_cpus
    rt, at = tres(row.get("ReqTRES")), tres(row.get("AllocTRES"))
    peak, ave = tres(row.get("TRESUsageInMax")), tres(row.get("TRESUsageInAve"))
    return {"JobID": str(row.get("JobID", "")).strip(), "JobName": row.get("JobName"),
            "State": str(row.get("State", "")).split(" ")[0],
            "exit": exit_status(row.get("ExitCode")), "ReqCPUS": req_cpus, "AllocCPUS": alloc_cpus,
            "ReqMemMB": memory_mb(row.get("ReqMem"), req_cpus) or memory_mb(rt.get("mem")),
            "req_gpus": _gpus(rt), "alloc_gpus": _gpus(at),
            "Submit": timestamp(row.get("Submit")), "Start": timestamp(row.get("Start")),
            "End": timestamp(row.get("End")), "Elapsed": seconds(row.get("Elapsed")),
            "Timelimit": seconds(row.get("Timelimit")), "TotalCPU": seconds(row.get("TotalCPU")),
            "MaxRSSMB": memory_mb(row.get("MaxRSS")) if row.get("MaxRSS") not in (None, "")
            else memory_mb(peak.get("mem")),
            "gpumem": memory_mb(peak.get("gres/gpumem")),
            "gpuutil": float(ave["gres/gpuutil"]) if ave.get("gres/gpuutil", "").replace(".", "").isdigit() else None}


def records(rows: Iterable[Mapping[str, Any]], source: str) -> dict[tuple[int, int], SlurmJob]:
    """Rows (allocations, their steps, requeued runs with --duplicates) → one record per job."""
    jobs: dict[tuple[int, int], SlurmJob] = {}
    steps: dict[str, list[dict[str, Any]]] = {}
    for raw in rows:
        v = _row_values(raw)
        jid = v["JobID"]
        base, _, step = jid.partition(".")
        if step:
            steps.setdefault(base, []).append(v)
            continue
        key = _key(base)
        job = jobs.get(key)
        if job is None:
            job = jobs[key] = SlurmJob(job=base, cluster=key[0], proc=key[1], log=source)
        _add_run(job, v)
    for base, rows_ in steps.items():
        job = jobs.get(_key(base))
        if job is None:
            continue
        rss = [s["MaxRSSMB"] for s in rows_ if s.get("MaxRSSMB") is not None]
        if rss:
            job.memory_mb.used = max(rss)
        gmem = [s["gpumem"] for s in rows_ if s.get("gpumem") is not None]
        if gmem:
            job.gpus_memory_mb.used = max(gmem)
        util = [s["gpuutil"] for s in rows_ if s.get("gpuutil") is not None]
        if util and job.gpus.allocated:
            job.gpus.used = max(util) / 100.0 * job.gpus.allocated
        if job.cpus.used is None:
            cpu = sum(s.get("TotalCPU") or 0.0 for s in rows_)
            wall = job.wall_seconds
            if cpu and wall:
                job.cpus.used = cpu / wall
    return jobs


def _key(base: str) -> tuple[int, int]:
    m = re.match(r"(\d+)(?:[_+](\d+))?", base)
    return (int(m.group(1)), int(m.group(2) or 0)) if m else (hash(base) & 0x7FFFFFFF, 0)


def _add_run(job: SlurmJob, v: Mapping[str, Any]) -> None:
    """One allocation row: a run of the job (with --duplicates, earlier rows are requeued runs)."""
    state = str(v.get("State") or "").upper().split()[0] if v.get("State") else ""
    job.slurm_state = state
    job.submitted_s = job.submitted_s or v.get("Submit")
    job.cpus.requested, job.cpus.allocated = v.get("ReqCPUS"), v.get("AllocCPUS")
    job.memory_mb.requested = v.get("ReqMemMB")
    job.memory_mb.allocated = v.get("ReqMemMB")
    job.gpus.requested, job.gpus.allocated = v.get("req_gpus"), v.get("alloc_gpus")
    job.time_limit_s = v.get("Timelimit")
    start, end = v.get("Start"), v.get("End")
    outcome = _RUN_OUTCOME.get(state, "open")
    if start is not None:
        if end is None and v.get("Elapsed") and state not in ("RUNNING", "PENDING"):
            end = start + float(v["Elapsed"])
        job.runs.append(Run(start_s=float(start), end_s=None if state == "RUNNING" else end,
                            outcome=outcome if state != "RUNNING" else "open"))
        job.last_event_s = end or start
    elif v.get("Elapsed") and state not in ("PENDING", ""):
        job.runs.append(Run(start_s=0.0, end_s=float(v["Elapsed"]), outcome=outcome))
    if v.get("TotalCPU") and v.get("Elapsed"):
        job.cpus.used = float(v["TotalCPU"]) / float(v["Elapsed"])
    code, sig = v.get("exit") or (None, None)
    if state in ("REQUEUED", "PREEMPTED", "NODE_FAIL", "BOOT_FAIL"):
        job.evictions += 1
        job.preemptions += state != "REQUEUED"
    job.evictions = max(job.evictions, int(v.get("restarts") or 0))   # scontrol: only a count
    if state in ("COMPLETED", "FAILED"):
        job.terminated, job.exit_code, job.exit_signal = True, code, sig
    elif state == "CANCELLED":
        job.aborted, job.abort_reason = True, "cancelled (scancel or the administrator)"
    elif state in ("OUT_OF_MEMORY", "TIMEOUT"):
        memory = state == "OUT_OF_MEMORY"
        job.holds.append(Hold(
            job=job.job, code=None, subcode=None,
            reason_name="Slurm OUT_OF_MEMORY" if memory else "Slurm TIMEOUT",
            reason=("the job used more memory than --mem and was killed" if memory
                    else "the job ran into its --time limit and was killed"),
            category="memory" if memory else "duration", time_s=float(end or 0.0),
            while_running=True))


@dataclass
class SlurmSource:
    """One file (or one sacct run) read: its jobs, as an advisor.logs ParsedLog."""

    path: str
    kind: str          # sacct-parsable, sacct-json, scontrol
    parsed: ParsedLog


def looks_like_slurm(path: str | Path) -> bool:
    """True for a saved sacct or scontrol output (not an HTCondor event log)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096).decode("utf-8", "replace").lstrip()
    except OSError:
        return False
    first = head.splitlines()[0] if head else ""
    return (head.startswith("{") and '"jobs"' in head) or first.startswith("JobId=") or (
        "|" in first and "JobID" in first.split("|"))


def read_text(text: str, source: str) -> SlurmSource:
    """Parse sacct (parsable or JSON) or scontrol output; an InputError names what is wrong."""
    stripped = text.lstrip()
    try:
        if stripped.startswith("{"):
            kind, rows = "sacct-json", json_rows(json.loads(text))
        elif stripped.startswith("JobId="):
            kind, rows = "scontrol", parse_scontrol(text)
        else:
            kind, rows = "sacct-parsable", parse_parsable(text)
        jobs = records(rows, source)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError("LOGFILE", source, f"is not Slurm accounting output this reads ({exc}).",
                         "save it with `sacct --parsable2 --duplicates --format="
                         + ",".join(SACCT_FIELDS) + " -j JOBIDS > FILE`, or `sacct --json`.",
                         source=source) from None
    starts = [r.start_s for j in jobs.values() for r in j.runs if r.start_s]
    ends = [j.last_event_s for j in jobs.values() if j.last_event_s]
    parsed = ParsedLog(path=source, jobs=dict(jobs), events=len(jobs), bytes=len(text.encode()),
                       date_format="iso", first_event_s=min(starts) if starts else None,
                       last_event_s=max(ends) if ends else None)
    if kind == "scontrol" or not any(j.memory_mb.used is not None for j in jobs.values()):
        parsed.warnings.append(
            "no memory or CPU use recorded (scontrol and job-completion records carry only the "
            "request): save `sacct --parsable2 --format=" + ",".join(SACCT_FIELDS)
            + "` on a cluster with accounting storage (slurmdbd) for them")
    return SlurmSource(source, kind, parsed)


def read_file(path: str | Path) -> SlurmSource:
    return read_text(Path(path).read_text(errors="replace"), str(path))


def run_sacct(job_ids: Sequence[str]) -> SlurmSource:
    """sacct for these jobs on this cluster; scontrol where accounting storage is disabled."""
    ids = [i.strip() for i in job_ids if i.strip()]
    for i in ids:
        if not re.fullmatch(r"\d+(?:_\d+)?(?:\+\d+)?", i):
            raise InputError("--sacct", i, "is not a Slurm job id.", "give ids like 1234 or 1234_5.")
    if shutil.which("sacct") is None:
        raise DomainFailure("sacct is not installed here. To fix: run on a Slurm login node, or "
                            "save `sacct --parsable2 --duplicates --format=" + ",".join(SACCT_FIELDS)
                            + " -j JOBIDS > FILE` there and pass FILE.", {"field": "--sacct"})
    cmd = ["sacct", "--parsable2", "--duplicates", "--format=" + ",".join(SACCT_FIELDS),
           "-j", ",".join(ids)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=SACCT_TIMEOUT_S)
    if r.returncode == 0 and len(r.stdout.strip().splitlines()) > 1:
        return read_text(r.stdout, "sacct -j " + ",".join(ids))
    why = (r.stderr or "").strip() or "sacct printed no jobs"
    # No database: the controller still knows recent jobs (for MinJobAge seconds).
    text = []
    for i in ids:
        s = subprocess.run(["scontrol", "show", "job", "-o", i], capture_output=True, text=True,
                           timeout=SACCT_TIMEOUT_S)
        if s.returncode == 0:
            text.append(s.stdout.strip())
    if not text:
        raise DomainFailure(f"sacct found no record of job(s) {', '.join(ids)} ({why}) and "
                            "scontrol no longer knows them. To fix: check the ids, or ask the "
                            "administrators whether job accounting (slurmdbd) is kept.",
                            {"field": "--sacct", "value": ",".join(ids)})
    src = read_text("\n".join(text) + "\n", "scontrol show job " + ",".join(ids))
    src.parsed.warnings.insert(0, f"sacct: {why.splitlines()[0]}; read `scontrol show job` instead")
    return src


def slurm_lines(rec: Mapping[str, Any]) -> list[str]:
    """The recommendation as #SBATCH directives."""
    out = []
    if rec.get("request_cpus"):
        out.append(f"#SBATCH --cpus-per-task={rec['request_cpus']}")
    mem = rec.get("retry_request_memory_mb") or rec.get("request_memory_mb")
    if mem:
        out.append(f"#SBATCH --mem={int(mem)}M")
    if rec.get("request_gpus"):
        out.append(f"#SBATCH --gres=gpu:{rec['request_gpus']}")
    return out


SLURM_ADVICE = {
    "hold_duration": "job(s) ran into their --time limit: ask for a longer --time, or checkpoint "
                     "(--signal=B:USR1@120 and --requeue, as `advisor recommend --target slurm` "
                     "writes) so that each run fits the limit.",
}


def adapt_recommendation(rec: dict[str, Any]) -> None:
    """HTCondor wording → Slurm's: #SBATCH lines, and advice that names Slurm's options."""
    rec["submit_lines"] = slurm_lines(rec)
    for f in rec.get("findings") or []:
        if f["kind"] in SLURM_ADVICE:
            f["message"] = f"{f['count']} {SLURM_ADVICE[f['kind']]}"


def analyze_slurm(paths: Sequence[str | Path] = (), job_ids: Sequence[str] = (),
                  headroom: float = 0.2, confidence: float = 0.95) -> Any:
    """The `advisor logs` report (advisor.logs.LogReport) for saved sacct/scontrol output and
    for jobs looked up with sacct."""
    from advisor.logs import LogReport
    from advisor.logs.calibrate import calibrate
    from advisor.logs.recommend import recommend
    from advisor.logs.report import totals, usage

    if not (0.0 <= headroom <= 4.0):
        raise InputError("--headroom", headroom, "must be between 0 and 4 (a fraction: 0.2 "
                         "is 20% above the measured peak).", "use e.g. --headroom 0.2.")
    sources = [read_file(p) for p in paths]
    if job_ids:
        sources.append(run_sacct(job_ids))
    parsed = [s.parsed for s in sources]
    jobs: list[JobRecord] = [j for p in parsed for j in p.jobs.values()]
    t = totals(jobs)
    cal = calibrate(jobs, {p.path: p.last_event_s for p in parsed}, [p.path for p in parsed],
                    confidence)
    rec = recommend(jobs, t, headroom)
    adapt_recommendation(rec)
    return LogReport(logs=parsed, jobs=jobs, totals=t, usage=usage(jobs), recommendation=rec,
                     calibration=cal, headroom=headroom, errors=[])
