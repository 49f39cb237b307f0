"""Bad command lines, bad files and interrupted runs: each case of the robustness and faults
report reproduced through the real CLI, and refused cleanly (exit 1 or 2, the option or field
named, no traceback, one JSON document on stdout under --json, no debris left behind)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from advisor.cli import main
from advisor.output import atomic_write, check_output_dir, clean_stale_temporaries, staged_directory
from advisor.recommend.evaluate import (
    MAX_SIM_JOB_HOURS,
    MAX_SIM_JOBS,
    MAX_SIM_RUNS,
    MAX_SIM_WORK_HOURS,
    simulated_slice,
)
from simulator.scenario import MAX_REPLICATIONS

REPO = Path(__file__).resolve().parents[1]
WORKLOADS = REPO / "examples" / "workloads"
LOG = REPO / "tests" / "fixtures" / "logs" / "chtc_gpu_modern_iso.log"
PY = sys.executable


def run_cli(capsys, *argv: object) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def json_error(out: str) -> dict:
    doc = json.loads(out)
    assert set(doc) >= {"error", "field", "value", "fix", "exit_code"}
    return doc


def advisor_proc(*argv: object, cwd: Path | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen([PY, "-m", "advisor.cli", *map(str, argv)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def catdog(tmp_path: Path, **changes: str) -> Path:
    text = (WORKLOADS / "4_catdog.yaml").read_text()
    for old, new in changes.items():
        text = text.replace(old, new)
    path = tmp_path / "w.yaml"
    path.write_text(text)
    return path


# --- --json errors ----------------------------------------------------------------------------

def test_exit_2_under_json_prints_one_json_document(tmp_path, capsys):
    code, out, err = run_cli(capsys, "assess", tmp_path / "none.yaml", "--json")
    assert code == 2 and "no such file" in err
    doc = json_error(out)
    assert doc["exit_code"] == 2 and doc["fix"] and doc["value"].endswith("none.yaml")


def test_exit_1_under_json_prints_one_json_document(capsys):
    code, out, _ = run_cli(capsys, "assess", WORKLOADS / "3_foundation_model.yaml", "--json")
    assert code in (0, 1)   # a verdict is data, not an error
    json.loads(out)
    code, out, _ = run_cli(capsys, "simulate", "mmc", "-r", "2", "--scheduler",
                           "tcp://127.0.0.1:1", "--json")
    assert code == 1 and json_error(out)["field"] == "--scheduler"


def test_usage_error_under_json_is_json_too(capsys):
    code, out, err = run_cli(capsys, "logs", LOG, "--rows", "many", "--json")
    assert code == 2 and "--rows" in err
    assert json_error(out)["field"] == "--rows"


# --- numeric options ----------------------------------------------------------------------------

@pytest.mark.parametrize("argv, option", [
    (["profile", "--memory-limit-gb", "nan", "--command", "true"], "--memory-limit-gb"),
    (["profile", "--memory-limit-gb", "inf", "--command", "true"], "--memory-limit-gb"),
    (["profile", "--memory-limit-gb", "-1", "--command", "true"], "--memory-limit-gb"),
    (["profile", "--timeout", "nan", "--command", "true"], "--timeout"),
    (["profile", "--disk-limit-gb", "0", "--command", "true"], "--disk-limit-gb"),
    (["profile", "--steps", "0", "x.py"], "--steps"),
    (["logs", str(LOG), "--rows", "-1"], "--rows"),
    (["logs", str(LOG), "--headroom", "nan"], "--headroom"),
    (["simulate", "mmc", "-r", "1000000000"], "--replications"),
    (["simulate", "mmc", "--workers", "-3"], "--workers"),
    (["simulate", "mmc", "--seed", "-1"], "--seed"),
    (["recommend", str(WORKLOADS / "4_catdog.yaml"), "--background-load", "inf"],
     "--background-load"),
    (["recommend", str(WORKLOADS / "4_catdog.yaml"), "--tasks", "0"], "--tasks"),
    (["report", str(WORKLOADS / "4_catdog.yaml"), "-o", "x.html", "--plot-replications", "0"],
     "--plot-replications"),
])
def test_numeric_options_are_checked_and_named(capsys, argv, option):
    code, out, err = run_cli(capsys, *argv, "--json")
    assert code == 2 and f"{option} = " in err and "To fix" in err
    assert json_error(out)["field"] == option


def test_replications_limit_is_the_scenario_files_limit(capsys):
    code, _, err = run_cli(capsys, "simulate", "mmc", "-r", MAX_REPLICATIONS + 1)
    assert code == 2 and f"{MAX_REPLICATIONS:g}" in err


def test_unbalanced_quote_in_command(capsys):
    code, out, err = run_cli(capsys, "profile", "--command", "python 'x.py", "--json")
    assert code == 2 and "--command" in err and "quot" in err
    assert json_error(out)["field"] == "--command"


# --- schedulers ---------------------------------------------------------------------------------

def test_scheduler_that_is_not_an_address_exits_2(capsys):
    code, out, err = run_cli(capsys, "simulate", "mmc", "--scheduler", "not a url", "--json")
    assert code == 2 and json_error(out)["field"] == "--scheduler"


def test_unreachable_scheduler_exits_1_after_a_bounded_wait(capsys):
    code, _, err = run_cli(capsys, "whatif", "mmc", "--vary", "pool.slots.A100.count=+1",
                           "--scheduler", "tcp://127.0.0.1:1")
    assert code == 1 and "cannot be reached" in err and "waited up to" in err


# --- outputs --------------------------------------------------------------------------------------

def test_output_dir_that_is_a_file_is_refused_before_the_simulation(tmp_path, capsys):
    blocker = tmp_path / "out"
    blocker.write_text("x")
    code, out, err = run_cli(capsys, "recommend", WORKLOADS / "4_catdog.yaml", "-o", blocker,
                             "--json")
    assert code == 2 and "is an existing file, not a directory" in err
    assert json_error(out)["field"] == "-o" and "simulating" not in err
    assert blocker.read_text() == "x"


def test_report_output_that_is_a_directory_is_refused(tmp_path, capsys):
    target = tmp_path / "page.html"
    target.mkdir()
    code, _, err = run_cli(capsys, "report", WORKLOADS / "4_catdog.yaml", "-o", target)
    assert code == 2 and "is a directory, not a file" in err


def test_profile_output_that_is_a_directory_is_refused_before_profiling(tmp_path, capsys):
    target = tmp_path / "p.json"
    target.mkdir()
    code, _, err = run_cli(capsys, "profile", "--command", f"{PY} -c 'import time; time.sleep(60)'",
                           "-o", target)
    assert code == 2 and "is a directory, not a file" in err


def _read_only_dir(tmp_path: Path) -> Path:
    if os.geteuid() == 0:        # root writes through file modes; /sys refuses new files
        return Path("/sys/advisor-robustness-test")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    return ro / "out"


def test_read_only_output_is_refused_before_the_work(tmp_path, capsys):
    target = _read_only_dir(tmp_path)
    code, out, err = run_cli(capsys, "recommend", WORKLOADS / "4_catdog.yaml", "-o", target,
                             "--json")
    assert code == 2 and "cannot be written" in err and json_error(out)["field"] == "-o"
    code, _, err = run_cli(capsys, "profile", "--command", "true", "-o", target / "p.json")
    assert code == 2 and "cannot be written" in err


def test_full_output_location_is_exit_2(tmp_path):
    """A file system that refuses to grow the file (RLIMIT_FSIZE stands in for a full disk)."""
    script = textwrap.dedent(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))
        from advisor.cli import main
        sys.exit(main(["logs", {str(LOG)!r}, "--emit-calibration", {str(tmp_path / 'c.yaml')!r}]))
    """)
    proc = subprocess.run([PY, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "--emit-calibration" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(tmp_path.glob(".*.tmp"))


def test_interrupted_recommend_leaves_no_half_set(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    proc = advisor_proc("recommend", WORKLOADS / "2_many_architectures.yaml", "-o", out)
    time.sleep(8)
    proc.kill()
    proc.wait()
    assert not any(out.iterdir())   # killed while simulating: nothing, not half a set


def test_staged_set_moves_whole_and_submit_file_last(tmp_path):
    target = tmp_path / "job"
    with staged_directory(target, last=["job.sub"]) as stage:
        for name in ("job.sub", "run.sh", "checkpoint_wrapper.sh"):
            atomic_write(stage / name, name)
        assert not target.exists()
    assert sorted(p.name for p in target.iterdir()) == ["checkpoint_wrapper.sh", "job.sub", "run.sh"]
    with pytest.raises(RuntimeError):
        with staged_directory(target) as stage:
            atomic_write(stage / "job.sub", "new")
            raise RuntimeError("interrupted")
    assert (target / "job.sub").read_text() == "job.sub"
    assert not [p for p in target.iterdir() if p.name.startswith(".")]


def test_debris_of_a_killed_writer_is_cleaned_on_the_next_run(tmp_path):
    dead = subprocess.run([PY, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / f".job.sub.{dead}.abcd1234.tmp").write_text("half")
    (tmp_path / f".advisor-stage-{dead}-abcd1234").mkdir()
    (tmp_path / "keep.txt").write_text("user file")
    mine = tmp_path / f".job.sub.{os.getpid()}.abcd1234.tmp"
    mine.write_text("in progress")
    removed = clean_stale_temporaries(tmp_path)
    assert len(removed) == 2 and mine.exists() and (tmp_path / "keep.txt").exists()
    check_output_dir(tmp_path)


def test_kill_9_during_report_leaves_no_tmp_files(tmp_path):
    page = tmp_path / "r.html"
    script = textwrap.dedent(f"""
        import os, signal
        import advisor.output as o
        real = o.atomic_write
        def dying(path, data, mode=None):   # die half-way through the write, as kill -9 would
            import tempfile
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path),
                                       prefix=f".{{os.path.basename(path)}}.{{os.getpid()}}.",
                                       suffix=".tmp")
            os.write(fd, data[:10].encode())
            os.kill(os.getpid(), signal.SIGKILL)
        o.atomic_write = dying
        import advisor.report as r
        r.atomic_write = dying
        from advisor.cli import main
        main(["report", {str(WORKLOADS / '4_catdog.yaml')!r}, "-o", {str(page)!r},
              "--replications", "1", "--plot-replications", "2"])
    """)
    proc = subprocess.run([PY, "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL
    assert len(list(tmp_path.glob(".r.html.*.tmp"))) == 1 and not page.exists()
    atomic_write(page, "<html></html>")     # the next write cleans the dead writer's debris
    assert not list(tmp_path.glob(".*.tmp")) and page.exists()


# --- recommend: bounded time and memory --------------------------------------------------------

def test_simulated_slice_is_bounded_whatever_the_campaign():
    for jobs, work, tau in [(1, 1e6, 0.37), (10**11, 72.0, 0.4), (10**11, 1e6, 10.0),
                            (200, 72.0, 0.2), (1, 0.5, None), (10**11, 150.0, None)]:
        n, w = simulated_slice(jobs, work, tau)
        assert 1 <= n <= MAX_SIM_JOBS and n <= jobs and w <= work
        assert n * w <= MAX_SIM_WORK_HOURS * 1.0001 or n == 1
        if tau:
            assert n * w / tau <= MAX_SIM_RUNS * 1.0001 or n == 1
            assert w <= max(MAX_SIM_JOB_HOURS, 20 * tau) or w == work
    assert simulated_slice(200, 72.0, 25 / 60) == (200, 72.0)   # the shipped examples: whole


def test_recommend_with_a_million_gpu_hours_is_bounded(tmp_path, capsys):
    path = catdog(tmp_path, **{"gpu_hours: 0.5 ": "gpu_hours: 1000000 "})
    code, out, _ = run_cli(capsys, "recommend", path, "--json", "--replications", "2")
    data = json.loads(out)
    assert code == 0 and data["expected"]["time_to_results_hours"]["mean"] > 1e5
    chosen = next(c for c in data["candidates"] if c["chosen"])
    assert chosen["jobs_per_simulated_job"] > 100           # scaled, not simulated in full
    assert any("slice of the campaign" in a for a in data["assumed"])


# --- inputs ----------------------------------------------------------------------------------------

def test_header_only_trace_is_exit_2(tmp_path, capsys):
    trace = tmp_path / "pods.csv"
    trace.write_text("submit_s,start_s,end_s,gpus\n")
    code, out, err = run_cli(capsys, "whatif", "mmc", "--background-trace", trace,
                             "--workers", "0", "--json")
    assert code == 2 and "holds no jobs" in err and json_error(out)["field"] == "--background-trace"


def test_trace_that_is_a_directory_says_so(tmp_path, capsys):
    code, _, err = run_cli(capsys, "whatif", "mmc", "--background-trace", tmp_path,
                           "--workers", "0")
    assert code == 2 and "is a directory" in err


def _log(tmp_path: Path, name: str, edit) -> Path:
    path = tmp_path / name
    path.write_text(edit(LOG.read_text()))
    return path


def test_events_out_of_order_are_flagged_naming_the_job(tmp_path, capsys):
    def earlier(text: str) -> str:
        return "\n".join(line.replace("2025-06-1", "2025-05-0") if line.startswith("005 ") else line
                         for line in text.split("\n"))
    code, out, err = run_cli(capsys, "logs", _log(tmp_path, "o.log", earlier), "--json")
    data = json.loads(out)
    assert code == 0 and any("out of order" in w and "4521.0" in w for w in data["warnings"])
    assert "warning:" in err


def test_impossible_job_ids_are_flagged(tmp_path, capsys):
    path = _log(tmp_path, "id.log",
                lambda t: t.replace("(4521.001.000)", "(99999999999999999999.001.000)"))
    code, out, _ = run_cli(capsys, "logs", path, "--json")
    assert code == 0 and any("impossible job id" in w for w in json.loads(out)["warnings"])


def test_impossible_dates_are_exit_2(tmp_path, capsys):
    path = _log(tmp_path, "d.log", lambda t: t.replace("2025-06-10 09:14:10", "2025-13-45 25:61:10", 1))
    code, out, err = run_cli(capsys, "logs", path, "--json")
    assert code == 2 and json.loads(out)["partial"] is True and "unreadable event" in err


SUB = "executable = run.sh\nrequest_cpus = 1\nrequest_memory = 4GB\nrequest_disk = 4GB\n"


@pytest.mark.parametrize("lines, code_name", [
    ("request_gpus = NaN\nqueue\n", "not-a-number"),
    ("request_gpus = 1\nrequest_memory = 1e308GB\nqueue\n", "bad-size"),
    ("request_gpus = 1\ngpus_minimum_capability = seven\nqueue\n", "not-a-number"),
    ("request_gpus = 1\nqueue -5\n", "bad-queue"),
    ("request_gpus = 1\narguments = \"--name unterminated\nqueue\n", "unterminated-quote"),
    ("request_gpus = 2.5\nqueue\n", "bad-count"),
])
def test_impossible_submit_values_are_errors(tmp_path, capsys, lines, code_name):
    path = tmp_path / "job.sub"
    path.write_text(SUB + lines)
    code, out, _ = run_cli(capsys, "check", path, "--json")
    data = json.loads(out)
    assert code == 1 and code_name in {f["code"] for f in data["findings"]}


# --- the profiler: containment and limits ---------------------------------------------------------

ESCAPER = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open(sys.argv[1], "w") as fh:
            fh.write(str(os.getpid()))
        time.sleep(600)
    os._exit(0)
time.sleep(float(sys.argv[2]))
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def _wait_for(path: Path, seconds: float = 120) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.1)
    raise AssertionError(f"{path} was never written")


def _gone(pid: int, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(sys.platform != "linux", reason="prctl containment is Linux only")
def test_setsid_child_does_not_outlive_the_profile(tmp_path):
    (tmp_path / "esc.py").write_text(ESCAPER)
    marker = tmp_path / "pid"
    proc = advisor_proc("profile", "--command", f"{PY} esc.py {marker} 1", "-o",
                        tmp_path / "p.json", cwd=tmp_path)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert _gone(_wait_for(marker, 5))


@pytest.mark.skipif(sys.platform != "linux", reason="prctl containment is Linux only")
def test_kill_9_of_advisor_profile_stops_the_script_and_removes_its_directory(tmp_path):
    (tmp_path / "esc.py").write_text(ESCAPER)
    marker = tmp_path / "pid"
    proc = advisor_proc("profile", "--command", f"{PY} esc.py {marker} 600", "-o",
                        tmp_path / "p.json", cwd=tmp_path)
    escaped = _wait_for(marker)
    run_dirs = list(Path(tempfile.gettempdir()).glob(f"advisor-profile-{proc.pid}-*"))
    assert run_dirs
    proc.kill()
    proc.wait()
    assert _gone(escaped)
    deadline = time.monotonic() + 20
    while any(d.exists() for d in run_dirs) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(d.exists() for d in run_dirs)


def test_stale_run_directories_are_removed_at_start(tmp_path):
    from advisor.profiler.runner import RUN_DIR_PREFIX, clean_stale_run_dirs

    dead = subprocess.run([PY, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f"{RUN_DIR_PREFIX}{dead}-abcd1234"
    stale.mkdir()
    live = tmp_path / f"{RUN_DIR_PREFIX}{os.getpid()}-abcd1234"
    live.mkdir()
    assert clean_stale_run_dirs(tmp_path) == [stale]
    assert live.exists() and not stale.exists()


def test_disk_writer_is_stopped_with_a_clear_message(tmp_path, capsys):
    (tmp_path / "w.py").write_text(
        "with open('big.bin', 'wb') as fh:\n"
        "    for _ in range(200):\n"
        "        fh.write(b'0' * (1 << 20))\n")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        code = main(["profile", "--command", f"{PY} w.py", "--disk-limit-gb", "0.02",
                     "-o", str(tmp_path / "p.json"), "--json"])
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()      # (the script's own traceback is shown as its output)
    assert code == 1 and "wrote more than" in err and "--disk-limit-gb" in err
    assert json.loads(out)["reason"] == "disk_limit"
    assert (tmp_path / "big.bin").stat().st_size <= 0.02 * 2**30 + 1
