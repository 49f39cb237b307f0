"""advisor.logs.recommend: right-sized requests and findings, on the real logs and on
synthetic job records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.logs import analyze_logs
from advisor.logs.parse import Hold, JobRecord, Resource, Run
from advisor.logs.recommend import recommend
from advisor.logs.report import totals
from advisor.recommend.sizing import MEMORY_STEP_MB, round_disk_mb, round_memory_mb

FIXTURES = Path(__file__).parent / "fixtures" / "logs"


def kinds(rec: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in rec["findings"]:
        out.setdefault(f["kind"], []).append(f)
    return out


def real(shared_data: Path, name: str) -> dict:
    p = shared_data / "htcondor-logs" / name
    if not p.exists():
        pytest.skip(f"{name} is not at {p}")
    return analyze_logs([p]).to_dict()["recommendation"]


def job(i: int, mem_used: float | None = 1000.0, mem_req: float = 4096.0, *, runs: int = 1,
        gpus: float | None = None, gpus_used: float | None = None, holds: tuple = (),
        exit_code: int = 0) -> JobRecord:
    j = JobRecord(job=f"1.{i}", cluster=1, proc=i, log="x.log")
    j.memory_mb = Resource(mem_req, mem_req, mem_used)
    j.disk_kb = Resource(1_000_000, 2_000_000, 500_000)
    j.cpus = Resource(1, 1, 0.9)
    if gpus:
        j.gpus = Resource(gpus, gpus, gpus_used)
    for r in range(runs):
        j.runs.append(Run(start_s=r * 10_000.0, end_s=r * 10_000.0 + 3600.0,
                          outcome="terminated" if r == runs - 1 else "evicted"))
    j.preemptions = j.evictions = runs - 1
    j.terminated = True
    j.exit_code = exit_code
    for code, reason, cat in holds:
        j.holds.append(Hold(j.job, code, 0, "x", reason, cat, 0.0, True))
        j.releases += 1
    return j


def rec_for(jobs: list[JobRecord], headroom: float = 0.2) -> dict:
    return recommend(jobs, totals(jobs), headroom)


# --- the real logs (facts from their README) --------------------------------------------------

def test_chtc_memory_above_request_is_found(shared_data):
    rec = real(shared_data, "chtc_gpulab_pytorch_cnn.log")
    (f,) = kinds(rec)["memory_above_request"]
    assert f["jobs"] == ["8960248.0"] and "1707" in f["message"] and "1024" in f["message"]
    assert rec["request_memory_mb"] >= 1707 * 1.2
    assert "gpu_usage_unknown" in kinds(rec)  # the Gpus row has no usage value
    assert f"request_memory = {rec['request_memory_mb']}MB" in rec["submit_lines"]


def test_snu_two_gpus_underused(shared_data):
    rec = real(shared_data, "snu_gpu_gpusmemory_2gpu.log")
    (f,) = kinds(rec)["gpus_underused"]
    assert f["jobs"] == ["118567.0"] and "0.24" in f["message"]
    assert rec["request_gpus"] == 1
    assert rec["gpus_minimum_memory_mb"] is None  # 311 MB fits any GPU
    assert "memory_overrequested" in kinds(rec)  # 3994 of 30720 MB


def test_snu_one_gpu_is_not_flagged(shared_data):
    rec = real(shared_data, "snu_gpu_gpusmemory_1gpu.log")
    k = kinds(rec)
    assert "gpus_underused" not in k and "gpu_idle" not in k and "gpu_low_utilization" not in k
    assert rec["request_gpus"] == 1
    assert rec["gpus_minimum_memory_mb"] >= 23324
    assert rec["request_memory_mb"] >= 26703 * 1.2
    assert "cpus_overrequested" in k  # 13.33 of 36 cores
    assert "disk_above_request" in k  # 74 KB used, 1 KB requested


def test_kuleuven_idle_gpus_and_failures(shared_data):
    rec = real(shared_data, "kuleuven_gpu_disconnect_abort.log")
    k = kinds(rec)
    assert k["gpu_idle"][0]["count"] == 14
    assert k["nonzero_exit"][0]["count"] == 14
    assert "disconnections" in k and "removed" in k


def test_bonn_memory_hold(shared_data):
    rec = real(shared_data, "bonn_evict_hold_abort.log")
    k = kinds(rec)
    assert k["hold_memory"][0]["jobs"] == ["259.0"]


# --- synthetic records -----------------------------------------------------------------------

def test_few_jobs_above_p95_get_retry_request_memory():
    jobs = [job(i, 1000.0 + i) for i in range(97)] + [job(97 + i, 6000.0) for i in range(3)]
    rec = rec_for(jobs)
    assert rec["request_memory_mb"] == round_memory_mb(np.percentile(
        [j.memory_mb.used for j in jobs], 95, method="higher") * 1.2)
    assert rec["retry_request_memory_mb"] == round_memory_mb(6000 * 1.2)
    assert "memory_outliers" in kinds(rec)
    assert any(line.startswith("retry_request_memory = ") for line in rec["submit_lines"])


def test_memory_holds_for_many_jobs_raise_the_request():
    hold = ((34, "Job has gone over cgroup memory limit of 4096 megabytes.", "memory"),)
    jobs = [job(i, 3000.0) for i in range(6)] + [job(6 + i, 3000.0, holds=hold) for i in range(4)]
    for j in jobs[6:]:
        j.terminated = False  # held and never finished: need unknown
        j.runs[-1].outcome = "held"
    rec = rec_for(jobs)
    assert rec["retry_request_memory_mb"] is None
    assert rec["request_memory_mb"] >= 2 * 4096  # at least twice what the held jobs had
    assert "too many" in kinds(rec)["hold_memory"][0]["message"]


def test_memory_holds_for_few_jobs_suggest_retry():
    hold = ((34, "Job has gone over cgroup memory limit of 4096 megabytes.", "memory"),)
    jobs = [job(i, 3000.0) for i in range(19)] + [job(19, 3000.0, holds=hold)]
    jobs[-1].terminated = False
    rec = rec_for(jobs)
    assert rec["retry_request_memory_mb"] >= 2 * 4096
    assert "retry_request_memory" in kinds(rec)["hold_memory"][0]["message"]


def test_duration_holds_and_restarts():
    dur = ((46, "The job exceeded allowed job duration of 12:00:00", "duration"),)
    jobs = [job(0, runs=5), job(1, holds=dur), job(2)]
    k = kinds(rec_for(jobs))
    assert k["many_restarts"][0]["jobs"] == ["1.0"]
    assert "longer tier" in k["hold_duration"][0]["message"]
    assert "evictions" in k


def test_gpu_counts():
    jobs = [job(0, gpus=4, gpus_used=3.6), job(1, gpus=4, gpus_used=1.1), job(2, gpus=1,
                                                                              gpus_used=0.02)]
    rec = rec_for(jobs)
    k = kinds(rec)
    assert rec["request_gpus"] == 4  # the busiest job keeps ~4 GPUs busy
    assert [f["jobs"] for f in k["gpus_underused"]] == [["1.1"]]
    assert k["gpu_idle"][0]["jobs"] == ["1.2"]
    one = rec_for([job(0, gpus=1, gpus_used=0.93)])
    assert one["request_gpus"] == 1  # headroom never adds a GPU


def test_nonzero_exit_and_no_jobs():
    k = kinds(rec_for([job(0, exit_code=3), job(1)]))
    assert k["nonzero_exit"][0]["jobs"] == ["1.0"]
    assert rec_for([])["findings"][0]["kind"] == "no_jobs"


def test_rounding_is_the_recommenders():
    """The logs size with advisor recommend's rules: memory up to 256 MB, disk up to whole GB."""
    assert round_memory_mb(1) == 256 and round_memory_mb(257) == 512
    assert round_memory_mb(8193) == 8448 and round_memory_mb(4096) == 4096
    assert round_disk_mb(1) == 1024 and round_disk_mb(1025) == 2048
    jobs = [job(i, 1000.0) for i in range(5)]          # 1000 MB x 1.2, 500,000 KB x 1.2 of disk
    rec = rec_for(jobs)
    assert rec["request_memory_mb"] == 1280
    assert rec["request_disk_kb"] == 1024**2           # 586 MB, rounded up to 1 GB
    assert "request_disk = 1GB" in rec["submit_lines"]


def test_submit_lines_come_from_the_htcondor_emitter():
    """The logs' lines are the emitter's, units included (gpus_minimum_memory had none)."""
    jobs = [job(i, 1000.0, gpus=1, gpus_used=0.9) for i in range(3)]
    for j in jobs:
        j.gpus_memory_mb = Resource(None, None, 20_000.0)
    rec = rec_for(jobs)
    assert rec["gpus_minimum_memory_mb"] == round_memory_mb(20_000 * 1.2)
    assert rec["submit_lines"] == [
        "request_cpus = 1", "request_memory = 1280MB", "request_disk = 1GB", "request_gpus = 1",
        f"gpus_minimum_memory = {rec['gpus_minimum_memory_mb']}MB"]


@settings(max_examples=60, deadline=None)
@given(peaks=st.lists(st.floats(1, 200_000), min_size=1, max_size=60),
       headroom=st.floats(0, 1))
def test_requests_cover_the_peaks(peaks, headroom):
    jobs = [job(i, p, mem_req=1024) for i, p in enumerate(peaks)]
    rec = rec_for(jobs, headroom)
    p95 = float(np.percentile(peaks, 95, method="higher"))
    assert rec["request_memory_mb"] >= p95 * (1 + headroom) - 1e-6
    # every job fits the request or, re-run, the retry request (with headroom over the max)
    assert rec["request_memory_mb"] >= max(peaks) or (
        rec["retry_request_memory_mb"] >= max(peaks) * (1 + headroom) - 1e-6)
    assert rec["request_memory_mb"] >= MEMORY_STEP_MB


def test_more_headroom_never_asks_for_less():
    jobs = [job(i, 1000.0 + 37 * i) for i in range(40)]
    low, high = rec_for(jobs, 0.1), rec_for(jobs, 0.5)
    assert high["request_memory_mb"] >= low["request_memory_mb"]
    assert high["request_disk_kb"] >= low["request_disk_kb"]
