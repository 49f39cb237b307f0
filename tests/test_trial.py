"""`advisor trial`: one job run the way an execute point runs it (docs/DOMAIN.md, "What HTCondor
actually does"): sandbox, arguments and environment, exit-85 restarts, evictions, holds 12/34/36,
bad input, the CLI. The jobs are tests/fixtures/trial/train.py under hand-written submit files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from advisor.cli import main
from advisor.trial import CHECKPOINT_INTERVAL_ENV, TrialOptions, run_trial
from advisor.trial import runner as trial_runner
from advisor.trial.execute import command_for
from advisor.trial.job import read_job
from advisor.trial.syntax import SyntaxProblem, parse_arguments, parse_environment, parse_remaps

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "trial"


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    """A copy of the fixture folder (the outputs come back next to the submit file)."""
    folder = tmp_path / "jobs"
    shutil.copytree(FIXTURES, folder)
    return folder


def trial(folder: Path, name: str, **options) -> trial_runner.Trial:
    return run_trial(TrialOptions(submit_file=str(folder / name), **options))


def model(folder: Path) -> dict:
    return json.loads((folder / "trial-output" / "output" / "model.json").read_text())


def test_completed_job_gets_only_its_inputs_arguments_and_environment(jobs: Path) -> None:
    t = trial(jobs, "complete.sub", job=1)
    assert (t.outcome, t.exit_status, t.starts, t.checkpoint_restarts) == ("completed", 0, 1, 0)
    m = model(jobs)
    # only the inputs (a file, a folder copied whole), the executable and the starter's files
    assert set(m["sandbox"]) == {"train.py", "data.txt", "shards", ".job.ad", "_condor_stdout",
                                 "_condor_stderr", "checkpoints", "output"}
    assert Path(m["cwd"]).name.startswith("advisor-trial-sandbox-")
    assert m["scratch"] == m["cwd"]
    assert m["label"] == "job 1 of cluster 1"          # new-syntax quoting, $(Process)
    assert m["greeting"] == "hello there"
    assert (jobs / "trial-output" / "job.out").read_text().strip().endswith("done")
    assert [r["entry"] for r in t.outputs] == ["output"]
    assert any("model.json" in n and "/staging/me/model.json" in n for n in t.notes)
    assert all(not Path(s).exists() for s in t.sandboxes)   # removed without --keep


def test_exit_85_twice_restarts_in_place_from_the_checkpoint(jobs: Path) -> None:
    t = trial(jobs, "exit85.sub")
    assert (t.outcome, t.starts, t.checkpoint_restarts, t.evictions) == ("completed", 1, 2, [])
    m = model(jobs)
    assert m["steps"] == 6 and m["starts"] == [0, 2, 4]     # each start resumed where it stopped
    assert len(t.sandboxes) == 1                            # the same sandbox every time
    assert json.loads((jobs / "trial-output" / "checkpoints" / "state.json").read_text())["step"] == 6


def test_missing_checkpoint_path_at_exit_85_is_hold_36(jobs: Path) -> None:
    t = trial(jobs, "nockpt.sub")
    assert (t.outcome, t.hold_code, t.exit_status) == ("held", 36, 1)
    assert "checkpoints" in t.hold_reason and "mkdir -p checkpoints" in t.hold_reason


def test_missing_output_is_hold_12(jobs: Path) -> None:
    t = trial(jobs, "nooutput.sub")
    assert (t.outcome, t.hold_code) == ("held", 12)
    assert t.outputs == [{"entry": "output", "exists": False, "copied_to": None, "remap": None}]


def test_memory_over_the_request_is_hold_34(jobs: Path) -> None:
    t = trial(jobs, "memory.sub")
    assert (t.outcome, t.hold_code) == ("held", 34)
    assert "request_memory = 100 MB" in t.hold_reason
    assert t.peak_memory_mb > 100


def test_disk_over_the_request_is_hold_34(jobs: Path) -> None:
    text = (jobs / "nooutput.sub").read_text().replace(
        "--steps 2 --no-output", "--steps 40 --step-s 0.1 --disk-mb 2").replace(
        "request_memory = 512MB", "request_memory = 512MB\nrequest_disk = 1MB")
    (jobs / "disk.sub").write_text(text)
    t = trial(jobs, "disk.sub")
    assert (t.outcome, t.hold_code) == ("held", 34)
    assert "request_disk = 1024 KB" in t.hold_reason


def test_eviction_with_on_exit_or_evict_keeps_the_sigterm_checkpoint(jobs: Path) -> None:
    # evicted right after its first checkpoint: deterministic, unlike a time on a busy machine
    t = trial(jobs, "evict.sub", evict_on_file=["checkpoints/state.json"], grace_s=5)
    assert (t.outcome, t.starts, len(t.evictions)) == ("completed", 2, 1)
    ev = t.evictions[0]
    assert ev["kept_at_eviction"] == ["checkpoints"]     # output/ did not exist yet
    assert ev["injected"] == "--evict-on-file"
    assert ev["exit_code"] == 0 and "does not complete" in ev["note"]
    m = model(jobs)
    assert m["steps"] == 12 and len(m["starts"]) == 2 and m["starts"][1] > 0
    assert ev["lost_work_s"] < t.evictions[0]["at_run_time_s"]   # written after the SIGTERM
    assert len(t.sandboxes) == 2 and t.sandboxes[0] != t.sandboxes[1]


def test_eviction_with_on_exit_only_loses_the_sigterm_checkpoint(jobs: Path) -> None:
    text = (jobs / "evict.sub").read_text().replace("ON_EXIT_OR_EVICT", "ON_EXIT").replace(
        "output, checkpoints", "output")
    (jobs / "onexit.sub").write_text(text)
    t = trial(jobs, "onexit.sub", evict_after_s=[1.0], grace_s=5)
    assert (t.outcome, t.starts) == ("completed", 2)
    ev = t.evictions[0]
    assert ev["kept_at_eviction"] == [] and "ON_EXIT_OR_EVICT" in ev["note_transfer"]
    assert model(jobs)["starts"] == [0]      # started over: nothing survived
    assert ev["lost_work_s"] >= 1.0 and t.lost_work_s == pytest.approx(ev["lost_work_s"], abs=0.01)


def test_eviction_after_exit_85_restores_the_spooled_checkpoint(jobs: Path) -> None:
    text = (jobs / "evict.sub").read_text().replace("ON_EXIT_OR_EVICT", "ON_EXIT").replace(
        "output, checkpoints", "output").replace("--term-exit 0", "--exit85-every 2")
    (jobs / "spooled.sub").write_text(text)
    t = trial(jobs, "spooled.sub", evict_after_s=[1.0], grace_s=5)
    assert t.outcome == "completed" and t.checkpoint_restarts >= 1 and t.starts == 2
    starts = model(jobs)["starts"]
    # every start begins at an even step: an exit-85 checkpoint, never the SIGTERM one
    assert all(s % 2 == 0 for s in starts) and starts[-1] > 0


def test_eviction_that_ignores_sigterm_is_killed_after_the_grace(jobs: Path) -> None:
    text = (jobs / "evict.sub").read_text().replace("--term-exit 0", "--ignore-term")
    (jobs / "stubborn.sub").write_text(text)
    t = trial(jobs, "stubborn.sub", evict_on_file=["checkpoints/state.json"], grace_s=0.5)
    assert t.evictions[0]["ended_by"] == "SIGKILL after the grace period"
    assert t.evictions[0]["exit_signal"] == 9 and t.outcome == "completed"


def test_checkpoint_every_drives_the_wrapper_interval(jobs: Path) -> None:
    t = trial(jobs, "wrapped.sub", checkpoint_every_s=1)
    assert t.outcome == "completed" and t.checkpoint_restarts >= 1
    starts = model(jobs)["starts"]
    assert len(starts) == t.checkpoint_restarts + 1 and starts == sorted(set(starts))
    assert not any(CHECKPOINT_INTERVAL_ENV in n for n in t.notes)


def test_checkpoint_every_on_a_job_that_ignores_it_says_so(jobs: Path) -> None:
    t = trial(jobs, "exit85.sub", checkpoint_every_s=1)
    assert any(CHECKPOINT_INTERVAL_ENV in n and "own checkpoint schedule" in n for n in t.notes)


def test_restart_bound_stops_the_trial(jobs: Path) -> None:
    t = trial(jobs, "exit85.sub", max_restarts=1)
    assert (t.outcome, t.exit_status, t.checkpoint_restarts) == ("stopped", 1, 1)


def test_queue_from_a_file_gives_the_chosen_job_its_items(jobs: Path) -> None:
    trial(jobs, "items.sub", job=1)
    assert model(jobs)["label"] == "beta-2-1"


def test_keep_leaves_the_sandbox(jobs: Path) -> None:
    t = trial(jobs, "complete.sub", keep=True)
    try:
        assert t.sandboxes_kept and (Path(t.sandboxes[0]) / "train.py").is_file()
    finally:
        for s in t.sandboxes:
            shutil.rmtree(s, ignore_errors=True)


def test_container_without_apptainer_runs_locally_and_says_so(jobs: Path, monkeypatch) -> None:
    text = (jobs / "complete.sub").read_text().replace(
        "queue 2", "container_image = docker://pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime\nqueue")
    (jobs / "container.sub").write_text(text)
    monkeypatch.setattr(trial_runner, "find_apptainer", lambda: None)
    t = trial(jobs, "container.sub")
    assert t.outcome == "completed" and "Apptainer is not installed" in t.container
    job = read_job(jobs / "container.sub")
    cmd = command_for(job, Path("/tmp/sb"), "/usr/bin/apptainer")
    assert cmd[:2] == ["/usr/bin/apptainer", "exec"] and job.container_image in cmd
    assert cmd[-len(job.arguments) - 1:] == ["./train.py", *job.arguments]


def test_cli_failed_job_exits_1_with_its_stderr_tail(jobs: Path, capsys) -> None:
    code = main(["trial", str(jobs / "fails.sub"), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["outcome"] == "failed" and doc["exit_code"] == 3
    assert "giving up on purpose" in doc["stderr_tail"]


def test_cli_completed_job_exits_0(jobs: Path, capsys) -> None:
    assert main(["trial", str(jobs / "exit85.sub")]) == 0
    out = capsys.readouterr().out
    assert "completed" in out and "exit-85 restarts 2" in out


@pytest.mark.parametrize("text, expected", [
    ("executable = train.py\nthis is not valid\nqueue\n", "line 2"),
    ("executable = train.py\ntransfer_input_files = data.txt, nothere.csv\nqueue\n",
     "line 2: transfer_input_files = 'nothere.csv': does not exist"),
    ("executable = nothere.sh\nqueue\n", "line 1: executable = 'nothere.sh'"),
    ("executable = train.py\ntransfer_input_files = osdf:///chtc/staging/me/big.tar.gz\nqueue\n",
     "--stage 'osdf:///chtc/staging/me/big.tar.gz=LOCALPATH'"),
    ("executable = train.py\ntransfer_input_files = file:///staging/me/big.tar.gz\nqueue\n",
     "--stage"),
    ("executable = train.py\nqueue x from seq 3 |\n", "never runs commands"),
    ("executable = train.py\narguments = \"--a 'open\"\nqueue\n", "line 2: arguments"),
    ("executable = train.py\nrequest_memory = 4 parsecs\nqueue\n", "line 2: request_memory"),
])
def test_cli_bad_input_exits_2_naming_the_line_and_the_fix(jobs: Path, capsys, text, expected) -> None:
    (jobs / "bad.sub").write_text(text)
    assert main(["trial", str(jobs / "bad.sub")]) == 2
    err = capsys.readouterr().err
    assert expected in err and "To fix:" in err and "Traceback" not in err


def test_cli_bad_options_exit_2(jobs: Path, capsys) -> None:
    assert main(["trial", str(jobs / "complete.sub"), "--job", "2"]) == 2
    assert "--job between 0 and 1" in capsys.readouterr().err
    assert main(["trial", str(jobs / "complete.sub"), "--evict-after", "-1"]) == 2
    assert main(["trial", str(jobs / "complete.sub"), "--stage", "nourl"]) == 2
    assert main(["trial", str(jobs / "nothere.sub")]) == 2
    assert main(["trial", str(jobs / "complete.sub"), "--evict-on-file", "/etc/passwd"]) == 2


def test_staged_url_is_copied_in_under_its_own_name(jobs: Path) -> None:
    (jobs / "staged.sub").write_text(
        "executable = train.py\narguments = --steps 1\n"
        "transfer_input_files = osdf:///chtc/staging/me/big.txt\n"
        "transfer_output_files = output\nrequest_memory = 512MB\nqueue\n")
    t = trial(jobs, "staged.sub", stage={"osdf:///chtc/staging/me/big.txt": jobs / "data.txt"})
    assert t.outcome == "completed" and "big.txt" in model(jobs)["sandbox"]


def test_output_dir_with_foreign_files_is_refused(jobs: Path, capsys) -> None:
    (jobs / "mine").mkdir()
    (jobs / "mine" / "thesis.tex").write_text("precious")
    assert main(["trial", str(jobs / "complete.sub"), "--output-dir", str(jobs / "mine")]) == 2
    assert (jobs / "mine" / "thesis.tex").read_text() == "precious"


def test_argument_and_environment_syntaxes() -> None:
    assert parse_arguments('"--a \'b c\' --d ""e"" \'it\'\'s\'"') == ["--a", "b c", "--d", '"e"', "it's"]
    assert parse_arguments("--a b  --c") == ["--a", "b", "--c"]
    assert parse_arguments('--q \\"x\\"') == ["--q", '"x"']
    assert parse_environment('"A=1 B=\'two words\' C="') == {"A": "1", "B": "two words", "C": ""}
    assert parse_environment("A=1;B=x y") == {"A": "1", "B": "x y"}
    assert parse_remaps('"a.pt = /staging/me/a.pt; b = osdf:///x/b"') == {
        "a.pt": "/staging/me/a.pt", "b": "osdf:///x/b"}
    for bad in ('"--a \'open"', "--a \"b"):
        with pytest.raises(SyntaxProblem):
            parse_arguments(bad)
    with pytest.raises(SyntaxProblem):
        parse_environment('"NOEQUALS"')


def test_an_executable_that_cannot_start_is_hold_6(jobs: Path) -> None:
    (jobs / "noexec.sub").write_text("executable = data.txt\nrequest_memory = 512MB\nqueue\n")
    t = trial(jobs, "noexec.sub")
    assert (t.outcome, t.hold_code) == ("held", 6) and "#!" in t.hold_reason


def test_an_interrupted_trial_leaves_no_job_running(jobs: Path, monkeypatch) -> None:
    from advisor.trial import execute

    seen: list[int] = []

    def interrupt(top: int) -> float:
        seen.append(top)
        raise KeyboardInterrupt

    monkeypatch.setattr(execute, "family_memory_mb", interrupt)
    with pytest.raises(KeyboardInterrupt):
        trial(jobs, "memory.sub")
    with pytest.raises(ProcessLookupError):
        os.killpg(seen[0], 0)     # the whole process group is gone


def test_timeout_bounds_the_whole_trial(jobs: Path) -> None:
    t = trial(jobs, "evict.sub", timeout_s=1)    # the job sleeps 12 x 0.2 s
    assert (t.outcome, t.exit_status) == ("stopped", 1)
    assert any("--timeout 1 s" in n for n in t.notes)
    assert all(not Path(s).exists() for s in t.sandboxes)
