"""`advisor logs`: exit codes, one JSON document, partial reports, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from advisor.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
MODERN = FIXTURES / "chtc_gpu_modern_iso.log"
OLD = FIXTURES / "campus_cpu_oldformat_newyear.log"


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_json_has_the_stable_keys(capsys):
    code, out, _ = run_cli(capsys, "logs", MODERN, OLD, "--json")
    assert code == 0
    d = json.loads(out)
    for key in ("jobs", "completed", "evictions", "holds", "recommendation", "partial", "errors"):
        assert key in d
    assert d["partial"] is False and d["errors"] == []
    assert len(d["jobs"]) == d["jobs_total"] == 10
    assert d["completed"] == 8 and d["evictions"] == 3
    holds = {h["code"]: h for h in d["holds"]}
    assert set(holds) == {26, 34, 46}
    assert all({"code", "subcode", "reason_name", "reason"} <= set(h) for h in d["holds"])
    assert holds[34]["subcode"] == 102 and "memory" in holds[34]["reason_name"]
    j = {x["job"]: x for x in d["jobs"]}["4521.1"]
    assert j["memory_mb"] == {"requested": 49152, "allocated": 49152, "used": 38012}
    assert set(j["disk_kb"]) == {"requested", "allocated", "used"}
    for key in ("cpus", "gpus", "gpus_memory_mb"):
        assert key in j
    rec = d["recommendation"]
    for key in ("request_memory_mb", "request_disk_kb", "request_gpus", "findings"):
        assert key in rec
    assert isinstance(rec["findings"], list) and rec["findings"]


def test_human_output(capsys):
    code, out, err = run_cli(capsys, "logs", MODERN)
    assert code == 0
    assert "Jobs" in out and "Request next time" in out and "request_memory =" in out
    assert "4521.2" in out and "gpus_underused" in out
    assert "Calibration" in out


def test_real_logs_json(shared_data, capsys):
    logs = sorted((shared_data / "htcondor-logs").glob("*.log"))
    if not logs:
        pytest.skip("no real logs")
    code, out, _ = run_cli(capsys, "logs", *logs, "--json")
    assert code == 0
    d = json.loads(out)
    assert d["jobs_total"] == 35 and d["partial"] is False
    by_job = {x["job"]: x for x in d["jobs"]}
    assert by_job["8960248.0"]["memory_mb"]["used"] == 1707
    assert by_job["8960248.0"]["memory_mb"]["requested"] == 1024
    assert by_job["119224.0"]["gpus"]["used"] == 0.59
    assert by_job["119224.0"]["gpus_memory_mb"]["used"] == 23324
    assert by_job["118567.0"]["gpus"]["used"] == 0.24
    assert [h["code"] for h in d["holds"]] == [21]
    kinds = {f["kind"] for f in d["recommendation"]["findings"]}
    assert {"memory_above_request", "gpus_underused", "gpu_idle"} <= kinds


def test_emit_calibration(tmp_path, capsys):
    target = tmp_path / "cal" / "fragment.yaml"
    code, out, _ = run_cli(capsys, "logs", MODERN, OLD, "--json", "--emit-calibration", target)
    assert code == 0
    d = json.loads(out)
    assert d["calibration"]["written"] == str(target)
    frag = yaml.safe_load(target.read_text())
    assert frag["eviction"]["time_to_eviction"]["dist"] == "exponential"
    assert frag["workload"]["work_hours"]["dist"] == "empirical"
    assert target.read_text().startswith("# Calibration fragment")


def test_truncated_log_prints_partial_report_and_exits_2(tmp_path, capsys):
    cut = tmp_path / "cut.log"
    cut.write_bytes(MODERN.read_bytes()[:-150])
    code, out, err = run_cli(capsys, "logs", OLD, cut, "--json")
    assert code == 2
    d = json.loads(out)  # still exactly one JSON document
    assert d["partial"] is True
    assert d["errors"][0]["log"] == str(cut) and "truncated or corrupt" in d["errors"][0]["message"]
    assert d["jobs_total"] == 10
    assert "error:" in err and "cut.log" in err


def test_partial_human_report(tmp_path, capsys):
    cut = tmp_path / "cut.log"
    cut.write_bytes(MODERN.read_bytes()[:-150])
    code, out, err = run_cli(capsys, "logs", cut)
    assert code == 2
    assert "partial report" in out and "Jobs" in out
    assert "truncated or corrupt" in err


def test_partial_report_does_not_write_calibration(tmp_path, capsys):
    cut = tmp_path / "cut.log"
    cut.write_bytes(MODERN.read_bytes()[:-150])
    target = tmp_path / "frag.yaml"
    code, _, err = run_cli(capsys, "logs", cut, "--emit-calibration", target, "--json")
    assert code == 2 and not target.exists() and "not written" in err


@pytest.mark.parametrize("content", [b"just some text\n", b"", b"\x00\xff" * 300])
def test_not_a_log_exits_2(tmp_path, capsys, content):
    p = tmp_path / "x.txt"
    p.write_bytes(content)
    code, out, err = run_cli(capsys, "logs", p, "--json")
    assert code == 2
    d = json.loads(out)
    assert d["partial"] is True and d["jobs"] == []
    assert "error:" in err


def test_missing_file_exits_2(tmp_path, capsys):
    code, out, err = run_cli(capsys, "logs", tmp_path / "nope.log", "--json")
    assert code == 2 and json.loads(out)["field"] == "LOGFILE"  # the error, as one JSON document
    assert "no such file" in err and "To fix" in err


def test_bad_headroom_and_usage(capsys):
    code, _, err = run_cli(capsys, "logs", MODERN, "--headroom", "-1")
    assert code == 2 and "headroom" in err
    code, _, err = run_cli(capsys, "logs")     # LOGFILE is optional with --sacct (Slurm)
    assert code == 2 and "LOGFILE" in err


def test_unwritable_calibration_path_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(capsys, "logs", MODERN, "--emit-calibration", blocker / "sub.yaml")
    assert code == 2 and "--emit-calibration" in err


def test_subprocess_no_traceback(tmp_path):
    bad = tmp_path / "bad.log"
    bad.write_text("not a log\n")
    r = subprocess.run([sys.executable, "-m", "advisor.cli", "logs", str(bad), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert json.loads(r.stdout)["partial"] is True
