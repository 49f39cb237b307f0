"""Right-sized requests and findings from what the jobs really used.

Requests: `request_memory` and `request_disk` from the used peaks across jobs: the 95th
percentile times (1 + headroom), rounded up by the recommender's own rules
(`advisor.recommend.sizing`: memory to 256 MB, disk to whole GB); when some jobs peaked above
that, `retry_request_memory` covers the maximum (HTCondor re-runs a job that exceeded its
memory with the larger request; the OSPool suggests it when fewer than ~20% of jobs need the
larger value). `request_cpus` from the average cores busy, `request_gpus` from the GPU-seconds
per second the jobs kept busy, `gpus_minimum_memory` from the peak GPU memory. The sized values
make one `Request`, and the HTCondor emitter writes its submit lines.

All jobs of the logs are treated as one workload: pass the logs of one kind of job at a time.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from advisor.emit.common import disk_quantity
from advisor.emit.htcondor import resource_lines
from advisor.logs.records import JobRecord
from advisor.logs.report import Totals
from advisor.recommend.sizing import DISK_STEP_MB, MEMORY_STEP_MB, round_disk_mb, round_memory_mb
from advisor.request import Request
from simulator.request import kib_to_mib, mib_to_kib

RETRY_FRACTION_MAX = 0.20  # OSPool: retry_request_memory when < ~20% of jobs need more
GPU_IDLE = 0.05  # per-GPU utilization below this: the GPU sat idle
GPU_LOW = 0.50  # below this: underused
MANY_STARTS = 3  # executions at or above this: "many restarts"
SHORT_RUN_MINUTES = 10.0
MAX_LISTED = 20
# Below this GPU memory need, every GPU of the CHTC GPU Lab and the OSPool fits (the smallest
# is the RTX 2080 Ti with about 10 GB usable: docs/DOMAIN.md §5).
GPU_MEMORY_ANY_MB = 8192


def _p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile: a value some job reached; with under 20 jobs, the max."""
    return float(np.percentile(np.asarray(values, dtype=float), 95, method="higher"))


def _gpus_needed(busy: float) -> int:
    """GPUs that keep up with `busy` GPU-seconds per second (5% tolerance for noise)."""
    return max(1, math.ceil(busy - 0.05))


def _finding(kind: str, severity: str, message: str, jobs: list[JobRecord] | None = None
             ) -> dict[str, Any]:
    jobs = jobs or []
    return {"kind": kind, "severity": severity, "message": message, "count": len(jobs),
            "jobs": [j.job for j in jobs[:MAX_LISTED]]}


def _fmt(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 10 or float(x).is_integer() else f"{x:.2f}"


def recommend(jobs: list[JobRecord], totals: Totals, headroom: float = 0.2) -> dict[str, Any]:
    """The right-sized request and the findings for a set of jobs."""
    findings: list[dict[str, Any]] = []
    rec: dict[str, Any] = {
        "headroom": headroom,
        "basis": (f"95th percentile of the per-job peak across jobs x (1 + {headroom:g}), "
                  f"rounded up (memory to {MEMORY_STEP_MB} MB, disk to {DISK_STEP_MB} MB, as advisor "
                  f"recommend rounds); retry_request_memory covers the maximum when "
                  f"<= {RETRY_FRACTION_MAX:.0%} of jobs need it"),
        "request_memory_mb": None, "retry_request_memory_mb": None,
        "request_disk_kb": None, "request_cpus": None, "request_gpus": None,
        "gpus_minimum_memory_mb": None,
    }
    if not jobs:
        rec["findings"] = [_finding("no_jobs", "error", "The logs hold no jobs.")]
        rec["submit_lines"] = []
        return rec
    k = 1.0 + headroom
    _memory(jobs, totals, k, rec, findings)
    _disk(jobs, k, rec, findings)
    _cpus(jobs, k, rec, findings)
    _gpus(jobs, k, rec, findings)
    _restarts_and_holds(jobs, totals, rec, findings)
    _outcomes(jobs, totals, findings)
    order = {"error": 0, "warning": 1, "info": 2}
    findings.sort(key=lambda f: order.get(f["severity"], 3))
    rec["findings"] = findings
    request, sized = _next_request(rec)
    rec["submit_lines"] = resource_lines(request, sized)
    return rec


# The recommendation's keys and the Request field each one sizes.
_SIZED = (("request_cpus", "request_cpus"), ("request_memory_mb", "request_memory_mb"),
          ("retry_request_memory_mb", "retry_request_memory_mb"),
          ("request_disk_kb", "request_disk_mb"), ("request_gpus", "request_gpus"),
          ("gpus_minimum_memory_mb", "gpus_minimum_memory_mb"))


def _next_request(rec: dict[str, Any]) -> tuple[Request, frozenset[str]]:
    """The request for next time and the fields the logs sized. Fields nothing in the logs
    sized keep Request's defaults; only the sized ones are written."""
    values = {name: rec[key] for key, name in _SIZED if rec[key] is not None}
    if "request_disk_mb" in values:
        values["request_disk_mb"] = kib_to_mib(values["request_disk_mb"])
    return Request(**values), frozenset(values)


def _memory(jobs: list[JobRecord], totals: Totals, k: float, rec: dict[str, Any],
            findings: list[dict[str, Any]]) -> None:
    peaks = [j.memory_mb.used for j in jobs if j.memory_mb.used is not None]
    above = [j for j in jobs if j.memory_mb.used is not None and j.memory_mb.requested
             and j.memory_mb.used > j.memory_mb.requested]
    for j in above[:3]:
        findings.append(_finding(
            "memory_above_request", "warning",
            f"Job {j.job} used {_fmt(j.memory_mb.used or 0)} MB of memory, above its request of "
            f"{_fmt(j.memory_mb.requested or 0)} MB: pools that enforce the request hold or kill "
            f"such jobs; raise request_memory.", [j]))
    if len(above) > 3:
        findings.append(_finding(
            "memory_above_request", "warning",
            f"{len(above)} jobs in all used more memory than they requested.", above))
    mem_holds = [j for j in jobs if any(h.category == "memory" for h in j.holds)]
    if not peaks:
        findings.append(_finding("memory_usage_unknown", "info",
                                 "No memory usage recorded: no recommendation for request_memory."))
        return
    p95, peak_max = _p95(peaks), max(peaks)
    request = round_memory_mb(p95 * k)
    need_more = [j for j in jobs if j.memory_mb.used is not None and j.memory_mb.used > request]
    n_need = len(set(j.job for j in need_more + mem_holds))
    ran = [j for j in jobs if j.runs or j.terminated] or jobs
    frac = n_need / len(ran)
    retry = None
    if n_need:
        retry = round_memory_mb(peak_max * k)
        # Held jobs that never finished: their true need is unknown, at least twice the request.
        unresolved = [j for j in mem_holds if not j.terminated]
        if unresolved:
            held_req = max((j.memory_mb.requested or 0) for j in unresolved)
            retry = max(retry, round_memory_mb(2 * max(held_req, request)))
        if frac > RETRY_FRACTION_MAX:
            request, retry = max(request, retry), None
        elif retry <= request:
            retry = None
    rec["request_memory_mb"] = request
    rec["retry_request_memory_mb"] = retry
    rec["memory_mb"] = {"used_p95": p95, "used_max": peak_max, "jobs_above_request": n_need}
    if mem_holds:
        if retry is not None:
            msg = (f"{len(mem_holds)} of {len(jobs)} jobs were held for memory: few enough "
                   f"(<= {RETRY_FRACTION_MAX:.0%}) for retry_request_memory = {retry}MB, so only "
                   f"those jobs pay for the larger request.")
        elif frac > RETRY_FRACTION_MAX:
            msg = (f"{len(mem_holds)} of {len(jobs)} jobs were held for memory: too many for "
                   f"retry_request_memory; request_memory = {request}MB for all jobs.")
        else:
            msg = (f"{len(mem_holds)} of {len(jobs)} jobs were held for memory; after release "
                   f"they peaked at no more than {_fmt(peak_max)} MB: request_memory = "
                   f"{request}MB covers them.")
        findings.append(_finding("hold_memory", "warning", msg, mem_holds))
    elif retry is not None:
        findings.append(_finding(
            "memory_outliers", "info",
            f"{len(need_more)} of {len(jobs)} jobs peaked above {request} MB (max "
            f"{_fmt(peak_max)} MB): retry_request_memory = {retry}MB re-runs just those.",
            need_more))
    def near_limit(j: JobRecord) -> bool:
        used, req = j.memory_mb.used, j.memory_mb.requested
        return used is not None and req is not None and req >= 256 and 0.95 * req <= used <= req

    near = [j for j in jobs if near_limit(j)]
    if near:
        findings.append(_finding(
            "memory_near_request", "warning",
            f"{len(near)} job(s) peaked within 5% of their memory request (e.g. {near[0].job}: "
            f"{_fmt(near[0].memory_mb.used or 0)} of {_fmt(near[0].memory_mb.requested or 0)} "
            f"MB): they may have been cut short by the limit; request_memory = {request}MB.",
            near))
    requested = [j.memory_mb.requested for j in jobs if j.memory_mb.requested]
    if requested and max(requested) >= 2 * request and max(requested) - request >= 1024:
        findings.append(_finding(
            "memory_overrequested", "info",
            f"Jobs requested up to {_fmt(max(requested))} MB of memory but peaked at "
            f"{_fmt(peak_max)} MB (95th percentile {_fmt(p95)} MB): request_memory = {request}MB "
            f"matches more slots and starts sooner."))


def _disk(jobs: list[JobRecord], k: float, rec: dict[str, Any],
          findings: list[dict[str, Any]]) -> None:
    peaks = [j.disk_kb.used for j in jobs if j.disk_kb.used is not None]
    if not peaks:
        return
    request = round_disk_mb(kib_to_mib(_p95(peaks) * k))
    if kib_to_mib(max(peaks)) > request:
        request = round_disk_mb(kib_to_mib(max(peaks) * k))
    rec["request_disk_kb"] = int(mib_to_kib(request))
    above = [j for j in jobs if j.disk_kb.used is not None and j.disk_kb.requested
             and j.disk_kb.used > j.disk_kb.requested]
    if above:
        j = max(above, key=lambda x: (x.disk_kb.used or 0))
        findings.append(_finding(
            "disk_above_request", "warning",
            f"{len(above)} job(s) used more disk than requested (e.g. {j.job}: "
            f"{_fmt(j.disk_kb.used or 0)} KB used, {_fmt(j.disk_kb.requested or 0)} KB "
            f"requested): request_disk = {disk_quantity(request)} (the sandbox peak; input files "
            f"count too).", above))
    disk_holds = [j for j in jobs if any(h.category == "disk" for h in j.holds)]
    if disk_holds:
        findings.append(_finding("hold_disk", "warning",
                                 f"{len(disk_holds)} job(s) were held for disk use: raise "
                                 f"request_disk (at least {disk_quantity(request)}).", disk_holds))


def _cpus(jobs: list[JobRecord], k: float, rec: dict[str, Any],
          findings: list[dict[str, Any]]) -> None:
    used = [j.cpus.used for j in jobs if j.cpus.used is not None]
    if not used:
        return
    request = max(1, math.ceil(_p95(used) * k - 1e-9))
    asked = [j.cpus.requested for j in jobs if j.cpus.requested]
    exceeded = any(j.cpus.used is not None and j.cpus.requested
                   and j.cpus.used > j.cpus.requested for j in jobs)
    if asked and not exceeded:  # an average below the request is no reason to ask for more
        request = min(request, int(max(asked)))
    rec["request_cpus"] = request
    if asked and max(asked) > 1 and request < max(asked) / 1.5:
        findings.append(_finding(
            "cpus_overrequested", "info",
            f"Jobs requested up to {_fmt(max(asked))} CPUs and kept {_fmt(max(used))} busy on "
            f"average: request_cpus = {request} (more only if data loading needs the workers)."))
    over = [j for j in jobs if j.cpus.used is not None and j.cpus.requested
            and j.cpus.used > 1.25 * j.cpus.requested]
    if over:
        findings.append(_finding(
            "cpus_above_request", "warning",
            f"{len(over)} job(s) kept more cores busy than they requested: request_cpus = "
            f"{request}, or limit the threads (OMP_NUM_THREADS, DataLoader num_workers).", over))


def _gpus(jobs: list[JobRecord], k: float, rec: dict[str, Any],
          findings: list[dict[str, Any]]) -> None:
    gpu_jobs = [j for j in jobs if (j.gpus.requested or j.gpus.allocated or 0) > 0]
    if not gpu_jobs:
        return
    measured = [j for j in gpu_jobs if j.gpus.used is not None]
    asked = max(int(j.gpus.requested or j.gpus.allocated or 1) for j in gpu_jobs)
    if not measured:
        rec["request_gpus"] = asked
        findings.append(_finding(
            "gpu_usage_unknown", "info",
            "The logs do not record GPU use (a Gpus row without a usage value: HTCondor before "
            "GPU monitoring, or monitoring off): no advice on the number of GPUs.", gpu_jobs))
    else:
        # GPU use is GPU-seconds per second (at most the number of GPUs): the GPUs needed are
        # its ceiling, less a small tolerance for noise; no headroom (a GPU cannot be 120% busy).
        busy = [j.gpus.used or 0.0 for j in measured]
        request = _gpus_needed(_p95(busy))
        rec["request_gpus"] = min(request, asked)

        def n_of(j: JobRecord) -> float:
            return float(j.gpus.allocated or j.gpus.requested or 1)

        under = [j for j in measured if n_of(j) > 1 and _gpus_needed(j.gpus.used or 0) < n_of(j)]
        for j in under[:3]:
            n = n_of(j)
            findings.append(_finding(
                "gpus_underused", "warning",
                f"Job {j.job} had {n:.0f} GPUs and kept {j.gpus.used:.2f} GPU busy on average "
                f"({(j.gpus.used or 0) / n:.0%} of each): request_gpus = "
                f"{_gpus_needed(j.gpus.used or 0)} would do the same work and wait less for a "
                f"match.", [j]))
        if len(under) > 3:
            findings.append(_finding("gpus_underused", "warning",
                                     f"{len(under)} multi-GPU jobs in all used fewer GPUs than "
                                     f"they had.", under))
        idle = [j for j in measured if (j.gpus.used or 0) / n_of(j) < GPU_IDLE]
        low = [j for j in measured if j not in idle and j not in under
               and (j.gpus.used or 0) / n_of(j) < GPU_LOW]
        if idle:
            findings.append(_finding(
                "gpu_idle", "warning",
                f"{len(idle)} of {len(measured)} GPU jobs kept their GPU busy less than "
                f"{GPU_IDLE:.0%} of the time: check that the script uses the GPU "
                f"(torch.cuda.is_available(), .to('cuda')) or run it on CPUs.", idle))
        if low:
            findings.append(_finding(
                "gpu_low_utilization", "info",
                f"{len(low)} GPU job(s) kept the GPU busy less than {GPU_LOW:.0%} of the time: "
                f"often input-bound (more DataLoader workers and CPUs help) or a small batch.",
                low))
    peaks = [j.gpus_memory_mb.used for j in gpu_jobs if j.gpus_memory_mb.used is not None]
    if peaks and max(peaks) * k > GPU_MEMORY_ANY_MB:
        rec["gpus_minimum_memory_mb"] = round_memory_mb(max(peaks) * k)
        findings.append(_finding(
            "gpu_memory_peak", "info",
            f"Peak GPU memory {_fmt(max(peaks))} MB: gpus_minimum_memory = "
            f"{rec['gpus_minimum_memory_mb']}MB keeps the jobs off GPUs too small for them."))
    elif peaks:
        findings.append(_finding(
            "gpu_memory_peak", "info",
            f"Peak GPU memory {_fmt(max(peaks))} MB: any GPU in the pools fits; no "
            f"gpus_minimum_memory needed."))


def _restarts_and_holds(jobs: list[JobRecord], totals: Totals, rec: dict[str, Any],
                        findings: list[dict[str, Any]]) -> None:
    many = [j for j in jobs if j.executions >= MANY_STARTS]
    if many:
        worst = max(many, key=lambda j: j.executions)
        findings.append(_finding(
            "many_restarts", "warning",
            f"{len(many)} job(s) started {MANY_STARTS} or more times (up to {worst.executions}, "
            f"job {worst.job}); each restart without a checkpoint repeats the work, and the "
            f"OSPool holds jobs after 30 starts. Checkpoint, or split the work into shorter jobs.",
            many))
    if totals.preemptions:
        lost = sum(r.seconds for j in jobs for r in j.runs if r.outcome == "evicted") / 3600
        evicted = [j for j in jobs if j.preemptions]
        findings.append(_finding(
            "evictions", "warning",
            f"{totals.preemptions} eviction(s) in {len(evicted)} job(s) lost {lost:.2f} h of run "
            f"time (work not checkpointed). Checkpoint at an interval well below the mean time "
            f"to eviction (see calibration), or use slots that are not backfill.", evicted))
    dur = [j for j in jobs if any(h.category == "duration" for h in j.holds)]
    if dur:
        findings.append(_finding(
            "hold_duration", "warning",
            f"{len(dur)} job(s) were held for running too long: ask for a longer tier "
            f"(CHTC +GPUJobLength = \"long\", OSPool +JobDurationCategory = \"Long\") or "
            f"checkpoint so that each run fits the limit.", dur))
    for cat, kind, advice in (
        ("transfer", "hold_transfer", "check transfer_input_files / transfer_output_files paths "
                                      "and sizes (files over 1 GB go through OSDF / staging)"),
        ("container", "hold_container", "check the container image name and that it runs"),
        ("checkpoint", "hold_checkpoint", "check checkpoint_exit_code and "
                                          "transfer_checkpoint_files"),
        ("other", "hold_other", "read the hold reason (condor_q -hold) and fix the cause"),
    ):
        hit = [j for j in jobs if any(h.category == cat for h in j.holds)]
        if hit:
            codes = Counter(h.code for j in hit for h in j.holds if h.category == cat)
            names = ", ".join(f"code {c} ({n}x)" for c, n in codes.most_common())
            findings.append(_finding(kind, "warning",
                                     f"{len(hit)} job(s) held: {names}: {advice}.", hit))


def _outcomes(jobs: list[JobRecord], totals: Totals, findings: list[dict[str, Any]]) -> None:
    failed = [j for j in jobs if j.terminated and j.exit_code not in (None, 0)]
    if failed:
        codes = Counter(j.exit_code for j in failed)
        listed = ", ".join(f"{c}: {n}" for c, n in codes.most_common())
        findings.append(_finding(
            "nonzero_exit", "warning",
            f"{len(failed)} of {totals.completed} completed jobs exited with a non-zero code "
            f"({listed}): the script failed; usage from failed runs understates what a working "
            f"run needs.", failed))
    signalled = [j for j in jobs if j.exit_signal is not None]
    if signalled:
        findings.append(_finding("killed_by_signal", "warning",
                                 f"{len(signalled)} job(s) were killed by a signal (signal 9 is "
                                 f"often the out-of-memory killer).", signalled))
    if totals.reconnect_failures or totals.disconnections:
        hit = [j for j in jobs if j.disconnections or j.reconnect_failures]
        findings.append(_finding(
            "disconnections", "info",
            f"{totals.disconnections} disconnection(s), {totals.reconnections} reconnected, "
            f"{totals.reconnect_failures} reconnect failure(s): network or execute-point "
            f"trouble; a failed reconnect restarts the job.", hit))
    if totals.shadow_exceptions:
        hit = [j for j in jobs if j.shadow_exceptions]
        findings.append(_finding("shadow_exceptions", "info",
                                 f"{totals.shadow_exceptions} shadow exception(s): "
                                 f"{hit[0].shadow_message or 'no message'}", hit))
    removed = [j for j in jobs if j.aborted]
    if removed:
        findings.append(_finding("removed", "info",
                                 f"{len(removed)} job(s) were removed (condor_rm or policy) "
                                 f"before finishing.", removed))
    runs = [j.runs[-1].seconds / 60.0 for j in jobs if j.terminated and j.runs]
    if runs and float(np.median(runs)) < SHORT_RUN_MINUTES:
        findings.append(_finding(
            "short_jobs", "info",
            f"Completed jobs ran a median of {float(np.median(runs)):.1f} minutes: matching and "
            f"file transfer take a large share of jobs this short; group several tasks into "
            f"one job."))
    if totals.jobs and not totals.completed:
        findings.append(_finding("none_completed", "warning",
                                 "No job in the logs completed: the usage seen may not be "
                                 "what a full run needs."))
