"""advisor.logs.parse: the six real logs (facts from their README), the hand-written fixtures
(every event type, both date formats, each one accepted by htcondor2), and bad input."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import htcondor2
import pytest

from advisor.logs import analyze_logs, parse_log
from advisor.logs.holdcodes import HOLD_REASONS, hold_category, reason_name
from advisor.logs.parse import JobRecord

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
HAND_WRITTEN = sorted(FIXTURES.glob("*.log"))
EVENT_TYPES = {0, 1, 4, 5, 6, 7, 9, 12, 13, 22, 23, 24, 40}


def logs_dir(shared_data: Path) -> Path:
    d = shared_data / "htcondor-logs"
    if not d.is_dir():
        pytest.skip(f"no htcondor-logs folder at {d}")
    return d


def jobs_of(path: Path) -> dict[str, JobRecord]:
    return {j.job: j for j in parse_log(path).jobs.values()}


# --- hand-written fixtures -------------------------------------------------------------------

def test_fixtures_exist():
    assert len(HAND_WRITTEN) >= 2


@pytest.mark.parametrize("path", HAND_WRITTEN, ids=lambda p: p.name)
def test_fixture_parses_completely_with_htcondor2(path: Path):
    """The bindings are strict: every event of every fixture must come back, to the last byte."""
    log = htcondor2.JobEventLog(str(path))
    n = sum(1 for _ in log.events(stop_after=0))
    offset = log.__getstate__()[1]
    log.close()
    text = path.read_text()
    assert n == text.count("\n...\n") + text.startswith("...\n")
    assert offset == os.path.getsize(path)
    parsed = parse_log(path)
    assert parsed.error is None and parsed.events == n


def test_fixtures_cover_every_event_type_and_both_date_formats():
    seen: Counter[int] = Counter()
    formats = set()
    for path in HAND_WRITTEN:
        parsed = parse_log(path)
        seen.update(parsed.event_counts)
        formats.add(parsed.date_format)
    assert EVENT_TYPES <= set(seen)
    assert {"iso", "MM/DD (no year)"} <= formats


def test_modern_fixture_facts():
    jobs = jobs_of(FIXTURES / "chtc_gpu_modern_iso.log")
    j0 = jobs["4521.0"]
    assert (j0.executions, j0.evictions, j0.preemptions) == (2, 1, 1)
    assert (j0.disconnections, j0.reconnections) == (1, 1)
    assert j0.exit_code == 0 and j0.state == "completed"
    assert j0.gpus.used == pytest.approx(0.87) and j0.gpus_memory_mb.used == 31877
    assert (j0.memory_mb.requested, j0.memory_mb.allocated, j0.memory_mb.used) == (24576, 24576,
                                                                                   21950)
    # eviction at 12:41:52 after a start at 09:14:10; good time is the second run only
    assert j0.runs[0].seconds == pytest.approx(3 * 3600 + 27 * 60 + 42)
    assert j0.good_seconds == pytest.approx(j0.runs[1].seconds)
    assert j0.transfer_in_s == pytest.approx(7 + 8) and j0.transfer_out_s == pytest.approx(18)
    j1 = jobs["4521.1"]
    assert [(h.code, h.subcode, h.category) for h in j1.holds] == [(34, 102, "memory")]
    assert j1.holds[0].while_running and j1.releases == 1
    assert j1.memory_mb.requested == 49152 and j1.memory_mb.used == 38012
    j2 = jobs["4521.2"]
    assert (j2.gpus.requested, j2.gpus.allocated, j2.gpus.used) == (2, 2, pytest.approx(0.08))
    assert j2.assigned_gpus == "GPU-77ab01c4,GPU-77ab01c5"
    j3 = jobs["4521.3"]
    assert [(h.code, h.category) for h in j3.holds] == [(46, "duration")]
    assert j3.aborted and j3.state == "removed" and j3.runs[0].outcome == "held"
    assert j3.memory_mb.allocated == 24576 and j3.memory_mb.requested is None  # slot ad only
    j4 = jobs["4521.4"]
    assert (j4.reconnect_failures, j4.shadow_exceptions, j4.executions) == (1, 1, 3)
    assert [r.outcome for r in j4.runs] == ["reconnect_failed", "shadow_exception", "terminated"]
    assert j4.exit_signal == 9 and j4.exit_code is None


def test_old_format_fixture_crosses_new_year():
    parsed = parse_log(FIXTURES / "campus_cpu_oldformat_newyear.log")
    assert parsed.date_format == "MM/DD (no year)"
    jobs = {j.job: j for j in parsed.jobs.values()}
    j0 = jobs["812.0"]
    # 12/31 22:01:17 → 01/01 01:15:40 is 3 h 14 min 23 s, not minus a year
    assert j0.runs[0].seconds == pytest.approx(3 * 3600 + 14 * 60 + 23)
    # wall time read from the log's timestamps (not measured here): both runs, the evicted
    # one (3 h 14 min 23 s) and the one that terminated (3 h 16 min 46 s)
    assert j0.wall_seconds == pytest.approx(11663 + 11806) and j0.preemptions == 1
    assert parsed.last_event_s is not None and parsed.first_event_s is not None
    assert parsed.last_event_s - parsed.first_event_s == pytest.approx(13 * 3600 + 43 * 60 + 6)
    # a table without Allocated: request and usage, no allocation
    assert (j0.memory_mb.requested, j0.memory_mb.allocated, j0.memory_mb.used) == (2048, None, 1530)
    assert j0.cpus.requested == 1 and j0.cpus.used is None
    j4 = jobs["812.4"]
    assert j4.checkpointed_evictions == 1 and j4.good_seconds == pytest.approx(j4.wall_seconds)
    j1 = jobs["812.1"]
    assert [(h.code, h.category) for h in j1.holds] == [(26, "disk")]
    assert j1.disk_kb.used == 26214 and j1.disk_kb.requested == 20480
    assert jobs["812.2"].aborted and jobs["812.2"].executions == 0
    assert jobs["812.3"].exit_code == 1 and jobs["812.3"].shadow_exceptions == 1


# --- the six real logs -----------------------------------------------------------------------

def test_real_logs_parse_without_errors(shared_data):
    d = logs_dir(shared_data)
    expected = {"chtc_gpulab_pytorch_cnn.log": 9, "snu_gpu_gpusmemory_1gpu.log": 10,
                "snu_gpu_gpusmemory_2gpu.log": 9, "bonn_evict_hold_abort.log": 25,
                "kuleuven_gpu_disconnect_abort.log": 94, "ansible_v24_modern_format.log": 46}
    for name, events in expected.items():
        parsed = parse_log(d / name)
        assert parsed.error is None, name
        assert parsed.events == events, name


def test_chtc_memory_above_request(shared_data):
    d = logs_dir(shared_data)
    parsed = parse_log(d / "chtc_gpulab_pytorch_cnn.log")
    assert dict(parsed.event_counts) == {0: 1, 40: 4, 1: 1, 6: 2, 5: 1}
    (job,) = parsed.jobs.values()
    assert (job.memory_mb.requested, job.memory_mb.used) == (1024, 1707)
    assert job.gpus.requested == 1 and job.gpus.allocated == 1 and job.gpus.used is None
    assert job.assigned_gpus == "CUDA1"
    assert (job.disk_kb.requested, job.disk_kb.used, job.disk_kb.allocated) == (512000, 35809,
                                                                                725632508)
    assert job.cpus.allocated == 20


def test_snu_gpu_usage_and_gpu_memory(shared_data):
    d = logs_dir(shared_data)
    (one,) = parse_log(d / "snu_gpu_gpusmemory_1gpu.log").jobs.values()
    assert one.gpus.used == pytest.approx(0.59) and one.gpus_memory_mb.used == 23324
    assert (one.cpus.requested, one.cpus.used) == (36, pytest.approx(13.33))
    assert (one.memory_mb.used, one.memory_mb.requested) == (26703, 51200)
    assert (one.disk_kb.requested, one.disk_kb.used) == (1, 74)
    (two,) = parse_log(d / "snu_gpu_gpusmemory_2gpu.log").jobs.values()
    assert (two.gpus.requested, two.gpus.used) == (2, pytest.approx(0.24))
    assert two.gpus_memory_mb.used == 311
    assert two.assigned_gpus == "GPU-ebb73fb1,GPU-5aaacc6f"
    assert (two.memory_mb.used, two.memory_mb.requested) == (3994, 30720)


def test_bonn_eviction_hold_abort(shared_data):
    d = logs_dir(shared_data)
    parsed = parse_log(d / "bonn_evict_hold_abort.log")
    assert parsed.date_format == "MM/DD (no year)"
    assert parsed.event_counts == {0: 3, 1: 3, 6: 12, 5: 1, 4: 1, 9: 3, 7: 1, 12: 1}
    jobs = {j.job: j for j in parsed.jobs.values()}
    evicted = jobs["26925.0"]
    assert evicted.evictions == 1
    # the eviction's table is not returned by the reader: the 006 events give 1028 MB
    assert evicted.memory_mb.used == 1028
    # evicted and removed in the same second: the removal caused it, not the pool
    assert evicted.preemptions == 0 and evicted.aborted
    held = jobs["259.0"]
    assert [(h.code, h.subcode) for h in held.holds] == [(21, 0)]
    assert held.holds[0].reason_name == HOLD_REASONS[21]
    assert held.holds[0].category == "memory"
    assert held.shadow_exceptions == 1 and held.aborted
    assert jobs["26923.0"].aborted and jobs["26923.0"].submitted_s is None  # submitted earlier


def test_kuleuven_disconnect_abort(shared_data):
    d = logs_dir(shared_data)
    parsed = parse_log(d / "kuleuven_gpu_disconnect_abort.log")
    assert parsed.date_format == "MM/DD (no year)"
    assert parsed.event_counts == {0: 20, 1: 14, 6: 36, 5: 14, 9: 6, 22: 2, 24: 2}
    jobs = list(parsed.jobs.values())
    assert len(jobs) == 20
    done = [j for j in jobs if j.terminated]
    assert len(done) == 14
    assert {j.exit_code for j in done} == {1, 255}
    assert all(j.memory_mb.requested == 16384 for j in done)
    assert all(j.gpus.used is not None and j.gpus.used <= 0.02 for j in done)
    assert sum(j.disconnections for j in jobs) == 2
    assert sum(j.reconnect_failures for j in jobs) == 2
    assert sum(j.aborted for j in jobs) == 6


def test_ansible_modern_format(shared_data):
    d = logs_dir(shared_data)
    parsed = parse_log(d / "ansible_v24_modern_format.log")
    assert parsed.date_format == "iso"
    jobs = list(parsed.jobs.values())
    assert len(jobs) == 8 and all(j.exit_code == 0 for j in jobs)
    assert all(j.runs[0].host and j.runs[0].host.startswith("slot1_") for j in jobs)
    assert all((j.memory_mb.requested, j.memory_mb.allocated) == (10, 128) for j in jobs)


# --- bad input -------------------------------------------------------------------------------

def _copy_head(src: Path, dst: Path, nbytes: int) -> Path:
    dst.write_bytes(src.read_bytes()[:nbytes])
    return dst


def test_truncated_log_keeps_what_came_before(tmp_path):
    src = FIXTURES / "chtc_gpu_modern_iso.log"
    text = src.read_bytes()
    cut = text.index(b"005 (4521.002.000)") + 120  # inside the first terminate event
    parsed = parse_log(_copy_head(src, tmp_path / "cut.log", cut))
    assert parsed.error and "truncated or corrupt" in parsed.error
    assert "line " in parsed.error and "005 (4521.002.000)" in parsed.error
    assert parsed.events > 10 and len(parsed.jobs) == 5
    assert not any(j.terminated for j in parsed.jobs.values())


def test_corrupt_event_in_the_middle(tmp_path):
    text = (FIXTURES / "chtc_gpu_modern_iso.log").read_text()
    bad = text.replace("005 (4521.002.000) 2025-06-10 10:07:15 Job terminated.",
                       "005 (4521.002.000) 2025-06-10 10:07:15 Job terminated.\n\tgarbage ####", 1)
    bad = bad.replace("\t(1) Normal termination (return value 0)\n", "", 1)
    p = tmp_path / "corrupt.log"
    p.write_text(bad)
    parsed = parse_log(p)
    assert parsed.error is not None
    assert parsed.events >= 10


@pytest.mark.parametrize("content, expect", [
    (b"hello, this is not a log\nat all\n", "not an HTCondor job event log"),
    (bytes(range(256)) * 8, "not an HTCondor job event log"),
    (b"", "empty file"),
    (b"0X0 (1.000.000) 2025-06-10 09:12:41 Job submitted from host: <1.2.3.4:9618>\n...\n",
     "not an HTCondor job event log"),
])
def test_not_a_log(tmp_path, content, expect):
    p = tmp_path / "x.log"
    p.write_bytes(content)
    parsed = parse_log(p)
    assert parsed.error is not None and expect in parsed.error
    assert parsed.events == 0


def test_analyze_reports_partial_and_other_logs(tmp_path):
    src = FIXTURES / "chtc_gpu_modern_iso.log"
    cut = _copy_head(src, tmp_path / "cut.log", len(src.read_bytes()) - 200)
    report = analyze_logs([FIXTURES / "campus_cpu_oldformat_newyear.log", cut])
    assert report.partial
    assert [e["log"] for e in report.errors] == [str(cut)]
    assert report.totals.jobs == 10  # both logs' jobs are still there
    d = report.to_dict()
    assert d["partial"] is True and d["errors"][0]["message"]


def test_missing_file_and_directory_are_input_errors(tmp_path):
    from advisor.errors import InputError

    with pytest.raises(InputError, match="no such file"):
        analyze_logs([tmp_path / "nope.log"])
    with pytest.raises(InputError, match="directory"):
        analyze_logs([tmp_path])
    with pytest.raises(InputError, match="headroom"):
        analyze_logs([FIXTURES / "chtc_gpu_modern_iso.log"], headroom=-0.1)


def test_same_log_twice_counts_once():
    p = FIXTURES / "chtc_gpu_modern_iso.log"
    assert analyze_logs([p, p]).totals.jobs == 5


# --- hold codes ------------------------------------------------------------------------------

def test_hold_code_names_cover_domain_codes():
    for code in (1, 3, 6, 12, 13, 21, 26, 34, 35, 36, 46, 47):
        assert code in HOLD_REASONS
    assert reason_name(999) == "unknown code 999"
    assert reason_name(None) == "no code recorded"


@pytest.mark.parametrize("code, reason, category", [
    (34, "Job has gone over cgroup memory limit of 2048 megabytes.", "memory"),
    (34, "Job used more disk than requested", "disk"),
    (46, "", "duration"),
    (47, "", "duration"),
    (3, "Job exceeded the maximum runtime of 12 hours", "duration"),
    (26, "SYSTEM_PERIODIC_HOLD: memory usage exceeded request_memory", "memory"),
    (21, "Your job used too much memory, as measured by ImageSize.", "memory"),
    (13, "Transfer input files failure", "transfer"),
    (35, "", "container"),
    (1, "via condor_hold (by user x)", "user"),
    (6, "Failed to execute", "other"),
])
def test_hold_category(code, reason, category):
    assert hold_category(code, reason) == category
