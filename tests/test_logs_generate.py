"""advisor.logs.generate: synthetic logs in HTCondor's exact layout, with known truth."""

from __future__ import annotations

import os
from pathlib import Path

import htcondor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.logs import analyze_logs, parse_log
from advisor.logs.generate import GeneratorConfig, main, resources_table, write_log


def _read_all(path: Path) -> tuple[list, int]:
    log = htcondor2.JobEventLog(str(path))
    events = list(log.events(stop_after=0))
    offset = log.__getstate__()[1]
    log.close()
    return events, offset


@pytest.mark.parametrize("date_format", ["iso", "old"])
def test_generated_log_is_read_to_the_end_by_htcondor2(tmp_path, date_format):
    p = tmp_path / "g.log"
    truth = write_log(p, GeneratorConfig(jobs=400, seed=3, date_format=date_format,
                                         start="2025-12-31T12:00:00"))
    events, offset = _read_all(p)
    assert len(events) == truth.events
    assert offset == os.path.getsize(p) == truth.bytes
    types = {int(e.type) for e in events}
    assert {0, 1, 4, 5, 6, 9, 12, 13} <= types
    if date_format == "iso":
        assert 40 in types
    first = p.read_text().splitlines()[0]
    assert ("2025-12-31" in first) if date_format == "iso" else (" 12/31 " in first)


@pytest.mark.parametrize("date_format", ["iso", "old"])
def test_analysis_matches_truth(tmp_path, date_format):
    p = tmp_path / "g.log"
    cfg = GeneratorConfig(jobs=2500, seed=5, date_format=date_format, p_disconnect=0.05,
                          p_shadow_exception=0.02, start="2025-12-30T08:00:00")
    truth = write_log(p, cfg)
    d = analyze_logs([p]).to_dict()
    assert not d["errors"]
    assert d["jobs_total"] == truth.jobs
    assert d["completed"] == truth.completed
    assert d["executions"] == truth.executions
    assert d["evictions"] == d["preemptions"] == truth.evictions
    assert {h["code"]: h["count"] for h in d["hold_codes"]} == truth.holds
    assert d["aborted"] == truth.aborted
    assert d["disconnections"] == truth.disconnections
    assert d["reconnections"] == truth.reconnections
    assert d["reconnect_failures"] == truth.reconnect_failures
    assert d["shadow_exceptions"] == truth.shadow_exceptions
    assert d["exit_codes"] == {str(k): v for k, v in sorted(truth.exit_codes.items())}
    assert sum(d["exit_signals"].values()) == truth.signals
    assert d["wall_hours"] == pytest.approx(truth.running_hours, rel=2e-3)
    peaks = {j["job"]: j["memory_mb"]["used"] for j in d["jobs"] if j["job"] in
             truth.memory_peak_mb}
    assert peaks == {k: v for k, v in truth.memory_peak_mb.items()}


def test_same_seed_same_bytes(tmp_path):
    cfg = GeneratorConfig(jobs=200, seed=9)
    write_log(tmp_path / "a.log", cfg)
    write_log(tmp_path / "b.log", cfg)
    assert (tmp_path / "a.log").read_bytes() == (tmp_path / "b.log").read_bytes()
    write_log(tmp_path / "c.log", GeneratorConfig(jobs=200, seed=10))
    assert (tmp_path / "a.log").read_bytes() != (tmp_path / "c.log").read_bytes()


def test_config_is_validated():
    with pytest.raises(ValueError, match="date_format"):
        GeneratorConfig(date_format="us")
    with pytest.raises(ValueError, match="jobs"):
        GeneratorConfig(jobs=-1)


def test_command_line(tmp_path, capsys):
    assert main([str(tmp_path / "m.log"), "--jobs", "20", "--seed", "1"]) == 0
    assert "20 jobs" in capsys.readouterr().out
    assert parse_log(tmp_path / "m.log").error is None


_SUB = "000 (5.000.000) 2025-06-10 09:00:00 Job submitted from host: <10.0.0.1:9618>\n...\n"
_TERM = ("005 (5.000.000) 2025-06-10 10:00:00 Job terminated.\n"
         "\t(1) Normal termination (return value 0)\n"
         "\t\tUsr 0 00:59:00, Sys 0 00:00:10  -  Run Remote Usage\n"
         "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage\n"
         "\t\tUsr 0 00:59:00, Sys 0 00:00:10  -  Total Remote Usage\n"
         "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Total Local Usage\n"
         "\t0  -  Run Bytes Sent By Job\n\t0  -  Run Bytes Received By Job\n"
         "\t0  -  Total Bytes Sent By Job\n\t0  -  Total Bytes Received By Job\n")

_ints = st.integers(0, 10**9)
_use = st.one_of(_ints, st.floats(0, 999, allow_nan=False).map(lambda x: round(x, 2)))


@settings(max_examples=40, deadline=None)
@given(cpus=_use, disk=_ints, mem=_ints, gpus=st.one_of(st.none(), _use),
       req=st.tuples(st.integers(1, 256), _ints, _ints), alloc=st.tuples(_ints, _ints, _ints))
def test_resources_table_round_trips_through_htcondor2(tmp_path_factory, cpus, disk, mem, gpus,
                                                       req, alloc):
    rows: list[tuple[str, object, object, object, str]] = [
        ("Cpus", cpus, req[0], alloc[0], ""), ("Disk", disk, req[1], alloc[1], "")]
    if gpus is not None:
        rows.append(("Gpus", gpus, 1, 1, '"GPU-0a1b2c3d"'))
    rows.append(("Memory", mem, req[2], alloc[2], ""))
    p = tmp_path_factory.mktemp("t") / "t.log"
    p.write_text(_SUB + _TERM + resources_table(rows) + "...\n")
    events, offset = _read_all(p)
    assert offset == os.path.getsize(p)
    ev = events[-1]
    assert (ev["CpusUsage"], ev["RequestCpus"], ev["Cpus"]) == (cpus, req[0], alloc[0])
    assert (ev["DiskUsage"], ev["RequestDisk"], ev["Disk"]) == (disk, req[1], alloc[1])
    assert (ev["MemoryUsage"], ev["RequestMemory"], ev["Memory"]) == (mem, req[2], alloc[2])
    if gpus is not None:
        assert ev["GpusUsage"] == gpus and ev["AssignedGpus"] == "GPU-0a1b2c3d"


@pytest.mark.slow
def test_hundred_thousand_jobs(tmp_path, request):
    """10^5 jobs: the log is read to its end and every job is found (speed: benchmarks/)."""
    if "slow" not in (request.config.getoption("markexpr") or "") or \
            "not slow" in request.config.getoption("markexpr"):
        pytest.skip("minutes of work: run with -m slow")
    p = tmp_path / "big.log"
    truth = write_log(p, GeneratorConfig(jobs=100_000, seed=1))
    parsed = parse_log(p)
    assert parsed.error is None and parsed.events == truth.events
    assert len(parsed.jobs) == 100_000
