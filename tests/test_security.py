"""The three security holes of issue 12, closed for every output format.

1. `advisor check` never runs what the file it reviews tells HTCondor to run (command includes,
   queue items from a command), reports file includes, and finishes on macro cycles.
2. No user-derived value (name, script, arguments, data paths, image, output names) can add a
   line or a directive to a written file: HTCondor .sub, run.sh, checkpoint wrapper, Slurm
   script, Kubernetes Job.
3. Secret arguments never reach the profile, run.sh, the submit file or any message.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import htcondor2
import pytest
import yaml

from advisor.check import check_file, check_text
from advisor.check.secrets import redact, scrub_args, secret_names
from advisor.check.submitfile import parse_submit_text
from advisor.cli import main
from advisor.emit import render_checkpoint_wrapper, render_htcondor, render_kubernetes, render_slurm
from advisor.emit.common import program_path
from advisor.emit.quote import shell_command, shell_quote, submit_arguments
from advisor.errors import InputError
from advisor.recommend import task_command, write_job_files
from advisor.request import DataFile, JobSpec, Request
from simulator.pool import load_pool

CHTC = load_pool("chtc")
KEY = "sk-live-FAKE0123456789abcdefABCDEF"
HF = "hf_FAKEfakeFAKEfakeFAKE0123"
ROOT = Path(__file__).resolve().parents[1]


# --- 1. check never runs the file it reviews -------------------------------------------------

COMMAND_INCLUDES = [
    "include : /bin/touch {probe} |",
    "include : /bin/touch {probe}|",
    "INCLUDE\t:/bin/touch {probe} |",
    "@include : /bin/touch {probe} |",
    "include command : /bin/touch {probe}",
    "include command into {probe}.out : /bin/touch {probe}",
    "include ifexist : /bin/touch {probe} |",
    "incl\\\nude : /bin/touch {probe} |",           # joined across lines, as HTCondor does
    "include \\\n   : /bin/touch {probe} |",
    "CMD = /bin/touch {probe} |\ninclude : $(CMD)",  # a macro that expands to a command
    "if true\n:include : /bin/touch {probe} |\nendif",
]


@pytest.mark.parametrize("form", COMMAND_INCLUDES)
def test_check_never_runs_a_command_include(tmp_path, form):
    probe = tmp_path / "PWNED"
    sub = tmp_path / "job.sub"
    sub.write_text("executable = run.sh\nrequest_gpus = 1\n" + form.format(probe=probe) + "\nqueue\n")
    report = check_file(sub, CHTC)
    assert not probe.exists()
    assert not Path(f"{probe}.out").exists()
    found = [f for f in report.findings if f.code == "command-include"]
    assert len(found) == 1 and found[0].severity == "error" and found[0].line is not None
    assert found[0].line >= 3 and "advisor check did not" in found[0].message
    assert report.exit_code == 1


def test_queue_items_from_a_command_are_reported_and_not_run(tmp_path):
    probe = tmp_path / "PWNED"
    report = check_text(f"executable = run.sh\nqueue x from /bin/touch {probe} |\n", CHTC)
    assert not probe.exists()
    assert [f.line for f in report.findings if f.code == "command-include"] == [2]


def test_a_joined_line_is_read_as_htcondor_joins_it(tmp_path):
    """`A = 1\\`, a commented `\\` line, then `include ...`: HTCondor makes it one assignment
    (nothing runs), and the check agrees (no include, A's value is the joined text)."""
    probe = tmp_path / "PWNED"
    sub = parse_submit_text(f"executable = run.sh\nA = 1\\\n# note \\\ninclude : /bin/touch {probe} |\nqueue\n")
    assert not probe.exists() and sub.findings == []
    assert sub.value("A") == f"1include : /bin/touch {probe} |"


def test_file_includes_are_reported_and_not_read(tmp_path):
    (tmp_path / "more.sub").write_text("request_gpus = 8\n")
    sub = tmp_path / "job.sub"
    sub.write_text("executable = run.sh\nrequest_gpus = 1\ninclude : more.sub\nqueue\n")
    report = check_file(sub, CHTC)
    inc = [f for f in report.findings if f.code == "include-file"]
    assert [(f.severity, f.line) for f in inc] == [("warning", 3)] and "more.sub" in inc[0].message
    assert parse_submit_text(sub.read_text(), str(sub)).value("request_gpus") == "1"


def test_an_include_inside_a_multi_line_value_is_dropped_and_the_value_read():
    sub = parse_submit_text("executable = run.sh\nNOTES @=end\nfirst line\ninclude : x |\n@end\nqueue\n")
    assert [f.code for f in sub.findings] == ["command-include"]
    assert sub.last("NOTES") is not None and sub.last("NOTES").value == "first line"


CYCLES = {
    "two": "A = $(B)\nB = $(A)\nrequest_gpus = $(A)\n",
    "three": "A = $(B)x\nB = $(C)\nC = $(A)\nrequest_memory = $(C)\n",
    "self-through-redefinition": "A = 1\nB = $(A)\nA = $(B)\n",
    "self-int": "A = $INT(A)\nrequest_cpus = $(A)\n",
    "self-attribute": "+A = $(MY.A)x\n",
    "bomb": "".join(f"M{i} = $(M{i + 1})$(M{i + 1})\n" for i in range(40)) + "M40 = xxxxxxxx\nrequest_disk = $(M0)\n",
}


def test_check_finishes_on_macro_cycles_and_bombs(tmp_path):
    """Each file in a child process with a deadline: a hang fails the test instead of the run."""
    for name, body in CYCLES.items():
        (tmp_path / f"{name}.sub").write_text("executable = run.sh\n" + body + "queue\n")
    code = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from advisor.check import check_file
        out = {{}}
        for p in sorted(Path({str(tmp_path)!r}).glob("*.sub")):
            r = check_file(p, "chtc")
            out[p.stem] = sorted({{f.code for f in r.findings if f.code.startswith("macro")}})
        print(json.dumps(out))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result.pop("bomb") == ["macro-too-large"]  # one finding, not one per macro
    assert result == {name: ["macro-cycle"] for name in CYCLES if name != "bomb"}


def test_a_self_reference_htcondor_resolves_is_not_a_cycle():
    sub = parse_submit_text("executable = run.sh\nA = 1\nA = $(A)x\nB = $(A)\nqueue\n")
    assert sub.findings == [] and sub.value("B") == "1x"


def test_nul_bytes_are_refused():
    with pytest.raises(InputError, match="NUL"):
        parse_submit_text("executable = run.sh\0\nqueue\n")


# --- 2. no value adds a line to a written file -----------------------------------------------

HOSTILE = [
    "data\ntouch PWNED\n#",
    "x\rqueue 9999",
    "a|b",
    "a,b",
    "$(touch PWNED)",
    "`touch PWNED`",
    "it's \"quoted\"",
    "$ENV(HOME)",
    "request_gpus = 64",
]
FIELDS = ("name", "executable", "arguments", "input", "output", "container", "checkpoint")
PLAIN = Request(request_cpus=2, request_memory_mb=4096, request_disk_mb=10240, request_gpus=1)
CKPT = Request(request_cpus=2, request_memory_mb=4096, request_disk_mb=10240, request_gpus=1,
               checkpoint_interval_minutes=240)


def hostile_job(field: str, value: str, queue: int = 3) -> JobSpec:
    base = dict(name="job", executable="train.sh", arguments="--epochs 2", queue=queue,
                inputs=(DataFile("data.tar.gz", 0.1),), outputs=("output",),
                container_image="docker://pytorch/pytorch:2.5.1", checkpoint_files=("checkpoint.pt",))
    key = {"input": "inputs", "output": "outputs", "container": "container_image",
           "checkpoint": "checkpoint_files"}.get(field, field)
    if field == "arguments":
        value = f"--tag {shlex.quote(value)}"
    wrapped = {"inputs": (DataFile(value, 0.1),), "outputs": (value,), "checkpoint_files": (value,)}
    base[key] = wrapped.get(key, value)
    return JobSpec(**base)


def render_or_refuse(render, *args):
    """The text, or None when the emitter refused the value with an InputError naming it."""
    try:
        return render(*args)
    except InputError as exc:
        assert exc.field and exc.fix
        return None


def submit_keys(text: str) -> tuple[set[str], str]:
    sub = htcondor2.Submit(text)
    return {k.lower() for k in sub.keys()}, sub.getQArgs()


@pytest.mark.parametrize("request_", [PLAIN, CKPT], ids=["plain", "checkpoint"])
@pytest.mark.parametrize("field", FIELDS)
def test_htcondor_values_cannot_add_commands(field, request_):
    keys, qargs = submit_keys(render_htcondor(request_, hostile_job(field, "ok"), CHTC))
    for value in HOSTILE:
        text = render_or_refuse(render_htcondor, request_, hostile_job(field, value), CHTC)
        used = field != "name" and (field != "checkpoint" or request_.checkpoints)
        if used and ("\n" in value or "\r" in value):
            assert text is None, value   # the submit language has no escape for a line break
        if text is None:   # refused: only values the submit language cannot carry
            assert any(c in value for c in "\n\r,"), value
            continue
        assert "\r" not in text and text.count("\n") == len(text.splitlines())
        assert submit_keys(text) == (keys, qargs), value
        assert not [f for f in check_text(text, CHTC).findings
                    if f.code in ("command-include", "include-file", "macro-cycle")]
        sub = htcondor2.Submit(text)
        if field == "executable" and not request_.checkpoints:
            assert sub.expand("executable") == value
        if field == "container":
            assert sub.expand("container_image") == value
        if field == "output":   # a checkpointing job also sends its checkpoint back (ON_EXIT_OR_EVICT)
            assert sub.expand("transfer_output_files").split(", ")[0] == value


def test_htcondor_arguments_follow_the_new_syntax():
    assert submit_arguments("--epochs 10") == '"--epochs 10"'
    assert submit_arguments('--tag "a b" --q it\\\'s') == '"--tag \'a b\' --q \'it\'\'s\'"'
    assert submit_arguments('--say "x""y"') == '"--say xy"'
    assert submit_arguments("--home $(Process)") == '"--home $(DOLLAR)(Process)"'


def fake_bin(tmp_path: Path, *names: str) -> Path:
    """Programs that record their arguments (one per line, NUL-terminated) and succeed."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in names:
        p = bin_dir / name
        p.write_text(f'#!/bin/bash\nfor a in "$@"; do printf "%s\\0" "$a"; done >> "$ADVISOR_TEST_LOG/{name}.args"\n')
        p.chmod(0o755)
    return bin_dir


def run_script(tmp_path: Path, script: Path, *fakes: str, args: tuple[str, ...] = ()) -> dict[str, list[str]]:
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    log = tmp_path / "log"
    log.mkdir(exist_ok=True)
    env = dict(os.environ, PATH=f"{fake_bin(tmp_path, *fakes)}:/usr/bin:/bin", ADVISOR_TEST_LOG=str(log))
    done = subprocess.run(["bash", str(script), *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return {p.stem: p.read_bytes().decode().split("\0")[:-1] for p in log.glob("*.args")}


def code_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("field", ["name", "executable", "arguments", "input", "container", "checkpoint"])
def test_slurm_script_runs_exactly_the_program(tmp_path, field, value):
    baseline = render_slurm(PLAIN, hostile_job(field, "ok", queue=1), CHTC)
    text = render_slurm(PLAIN, hostile_job(field, value, queue=1), CHTC)
    assert len(code_lines(text)) == len(code_lines(baseline))
    assert [ln for ln in text.splitlines() if ln.startswith("#SBATCH")] == \
        [ln for ln in baseline.splitlines() if ln.startswith("#SBATCH")] or field == "name"
    script = tmp_path / "job.sbatch"
    script.write_text(text)
    calls = run_script(tmp_path, script, "srun")
    job = hostile_job(field, value, queue=1)
    assert calls == {"srun": [program_path(job.executable), *shlex.split(job.arguments)]}
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("field", ["name", "executable", "checkpoint"])
def test_checkpoint_wrapper_runs_exactly_the_program(tmp_path, field, value):
    baseline = render_checkpoint_wrapper(CKPT, hostile_job(field, "ok"))
    text = render_checkpoint_wrapper(CKPT, hostile_job(field, value))
    # the program and the checkpoint folder it creates are the only lines a value reaches (quoted)
    assert code_lines(text) == code_lines(baseline) or field in ("executable", "checkpoint")
    assert len(code_lines(text)) == len(code_lines(baseline))
    script = tmp_path / "wrapper.sh"
    script.write_text(text)
    exe = hostile_job(field, value).executable
    program = tmp_path / program_path(exe)      # the program the wrapper runs: records its arguments
    program.parent.mkdir(parents=True, exist_ok=True)
    program.write_text('#!/bin/bash\nfor a in "$@"; do printf "%s\\0" "$a"; done >> "$ADVISOR_TEST_LOG/program.args"\n')
    program.chmod(0o755)
    calls = run_script(tmp_path, script, args=("--lr", "$(touch PWNED)"))
    assert calls == {"program": ["--lr", "$(touch PWNED)"]}
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("request_", [PLAIN, CKPT], ids=["plain", "checkpoint"])
@pytest.mark.parametrize("field", ["name", "executable", "arguments", "container", "checkpoint"])
def test_kubernetes_job_is_a_structure_not_text(field, request_):
    for value in HOSTILE:
        job = hostile_job(field, value)
        text = render_kubernetes(request_, job, CHTC)
        header = text[:text.index("apiVersion:")]
        assert all(line.startswith("#") for line in header.splitlines())
        doc = yaml.safe_load(text)
        assert set(doc) == {"apiVersion", "kind", "metadata", "spec"} and doc["kind"] == "Job"
        container = doc["spec"]["template"]["spec"]["containers"][0]
        args = shlex.split(job.arguments)
        if request_.checkpoints:
            assert container["command"][:2] == ["/bin/bash", "-c"]
            assert container["command"][3] == program_path(job.executable)
            assert container["args"] == args
            inner = subprocess.run(["bash", "-n", "-c", container["command"][2]], capture_output=True)
            assert inner.returncode == 0
        else:
            assert container["command"] == [program_path(job.executable)] and container["args"] == args
        if field == "container" and "\n" not in value and "\r" not in value:
            assert container["image"] in (value, "REPLACE-WITH-YOUR-IMAGE:latest")


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("field", ["script", "args", "data"])
def test_run_sh_runs_exactly_the_profiled_command(tmp_path, field, value):
    profile = {"mode": "torch", "script": "train.py", "args": ["--data", "data"]}
    data_dir = "data"
    if field == "script":
        profile["script"] = value
    elif field == "args":
        profile["args"] = ["--tag", value, value]
    else:
        data_dir = value
    rec = SimpleNamespace(
        request=PLAIN, data_dir=data_dir, files=[],
        command=task_command(SimpleNamespace(profile_data=profile)),
        job=JobSpec(name="job", inputs=(DataFile(Path(data_dir).name + ".tar.gz", 0.1),)))
    out = tmp_path / "out"
    write_job_files(rec, "chtc", out, "slurm")   # type: ignore[arg-type]
    run_sh = out / "run.sh"
    text = run_sh.read_text()
    lines = code_lines(text)
    assert lines[:3] == ["set -euo pipefail", "mkdir -p checkpoints output",
                         "export ADVISOR_CHECKPOINT_DIR=checkpoints ADVISOR_OUTPUT_DIR=output"]
    assert len(lines) == 5 and lines[3].startswith("tar -xzf ") and lines[4].startswith("exec python3 ")
    calls = run_script(out, run_sh, "python3", "tar")
    assert calls["tar"] == ["-xzf", Path(data_dir).name + ".tar.gz"]
    assert calls["python3"] == [Path(str(profile["script"])).name, *profile["args"]]
    assert not (out / "PWNED").exists() and not (tmp_path / "PWNED").exists()


def test_shell_quote_keeps_control_characters_on_one_line():
    for value in HOSTILE + ["", "'", "\\", "\t", "\x1b[31m"]:
        quoted = shell_quote(value)
        assert "\n" not in quoted and "\r" not in quoted
        echo = subprocess.run(["bash", "-c", f"printf '%s' {quoted}"], capture_output=True)
        assert echo.stdout.decode() == value


# --- 3. secrets never reach a written file or a message ---------------------------------------

@pytest.mark.parametrize("args, stored, names", [
    (["--api-key", KEY, "--epochs", "3"], ["--api-key", "<secret:api_key>", "--epochs", "3"], ["api_key"]),
    ([f"--api-key={KEY}"], ["--api-key=<secret:api_key>"], ["api_key"]),
    (["--password", "hunter2"], ["--password", "<secret:password>"], ["password"]),
    (["--hf-token", HF, "--token", HF], ["--hf-token", "<secret:hf_token>", "--token", "<secret:hf_token>"],
     ["hf_token"]),
    (["--db", "postgres://me:s3cret@db.example.org/x"],
     ["--db", "postgres://me:<secret:url_password>@db.example.org/x"], ["url_password"]),
    ([HF], ["<secret:hf_token>"], ["hf_token"]),
    (["db.password=abc12345"], ["db.password=<secret:password>"], ["password"]),
    (["--wandb-key", "0123456789abcdef0123456789"], ["--wandb-key", "<secret:wandb_key>"], ["wandb_key"]),
])
def test_secret_arguments_become_placeholders(args, stored, names):
    out, found = scrub_args(args)
    assert out == stored and [s.name for s in found] == names
    assert not any(KEY in a or HF in a or "hunter2" in a or "s3cret" in a for a in out)


def test_ordinary_arguments_are_kept():
    args = ["--max-tokens", "512", "--tokenizer", "gpt2", "--sort-key", "name", "--key", "val_loss",
            "--token", "$HF_TOKEN", "--password-file", "/home/me/pw.txt", "--pad-token", "[PAD]",
            "--data", "./data", "--lr", "1e-3", "https://example.org:8080/x"]
    assert scrub_args(args) == (args, [])


def test_run_sh_reads_secrets_from_a_file_and_never_holds_them(tmp_path, capsys):
    profile = {"mode": "torch", "script": "train.py", "args": ["--api-key", KEY, "--db",
                                                               "postgres://me:s3cret@db/x"]}
    command = task_command(SimpleNamespace(profile_data=profile))   # a profile from before the fix
    assert secret_names(scrub_args(profile["args"])[0]) == ["api_key", "url_password"]
    rec = SimpleNamespace(request=PLAIN, data_dir=None, files=[], command=command,
                          job=JobSpec(name="job", executable="run.sh", inputs=(DataFile("secrets", 0.0),)))
    out = tmp_path / "out"
    paths = write_job_files(rec, "chtc", out, "htcondor")   # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert "secrets/api_key" in err and "chmod 600" in err
    for p in paths:
        assert KEY not in p.read_text() and "s3cret" not in p.read_text()
    assert KEY not in err and "s3cret" not in err
    sub = htcondor2.Submit((out / "job.sub").read_text())
    assert "secrets" in [e.strip() for e in sub.expand("transfer_input_files").split(",")]
    run_sh = out / "run.sh"
    # without the file: a clear failure before the program starts
    log = tmp_path / "log"
    log.mkdir()
    env = dict(os.environ, PATH=f"{fake_bin(out, 'python3')}:/usr/bin:/bin", ADVISOR_TEST_LOG=str(log))
    missing = subprocess.run(["bash", str(run_sh)], cwd=out, env=env, capture_output=True, text=True)
    assert missing.returncode == 1 and "secrets/api_key is missing" in missing.stderr
    assert not (log / "python3.args").exists()
    # with the files (mode 600): the program gets the values
    (out / "secrets").mkdir(mode=0o700)
    for name, value in (("api_key", KEY), ("url_password", "s3cret")):
        (out / "secrets" / name).write_text(value + "\n")
        (out / "secrets" / name).chmod(stat.S_IRUSR | stat.S_IWUSR)
    calls = run_script(out, run_sh, "python3")
    assert calls["python3"] == ["train.py", "--api-key", KEY, "--db", "postgres://me:s3cret@db/x"]
    # and the check of the written files finds no secret in them
    report = check_file(out / "job.sub", CHTC)
    assert not [f for f in report.findings if f.code.startswith("secret")]


def test_command_mode_profile_keeps_no_secret(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["profile", "--command", f"{sys.executable} -c pass --api-key {KEY}", "--json"])
    assert code == 0
    captured = capsys.readouterr()
    assert KEY not in captured.out and KEY not in captured.err
    saved = next((tmp_path / "profiles").glob("*.json")).read_text()
    assert KEY not in saved and "<secret:api_key>" in saved
    assert "<secret:api_key>" in captured.err and "chmod 600" in captured.err


def test_a_failing_command_does_not_print_its_secret(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    script = "import sys; print(sys.argv); print(*sys.argv); raise SystemExit(3)"
    for json_flag in ([], ["--json"]):
        code = main(["profile", "--command",
                     f"{sys.executable} -c '{script}' --token {HF} --password hunter2pw", *json_flag])
        assert code == 1
        captured = capsys.readouterr()
        assert "hunter2pw" not in captured.out + captured.err and HF not in captured.out + captured.err
        assert "***" in captured.out + captured.err


def test_check_masks_secrets_in_every_message(tmp_path, capsys):
    bad = tmp_path / "bad.sub"
    bad.write_text(f"executable = run.sh\nHF_TOKEN {HF}\nqueue\n")
    assert main(["check", str(bad)]) == 2
    assert main(["check", str(bad), "--json"]) == 2
    captured = capsys.readouterr()
    assert HF not in captured.out + captured.err and "line 2" in captured.out + captured.err
    sub = tmp_path / "job.sub"
    sub.write_text(f'executable = run.sh\narguments = "--api-key {KEY}"\n'
                   f'environment = "DB=postgres://me:s3cret@db/x"\nqueue\n')
    (tmp_path / "run.sh").write_text(f"#!/bin/bash\nexport HF_TOKEN={HF}\npython3 train.py --password hunter2pw\n")
    assert main(["check", str(sub), "--json"]) == 1
    out = capsys.readouterr().out
    for secret in (KEY, HF, "s3cret", "hunter2pw"):
        assert secret not in out
    codes = [(f["code"], f["line"]) for f in json.loads(out)["findings"] if f["code"].startswith("secret")]
    assert ("secret", 2) in codes and ("secret", 3) in codes
    assert codes.count(("secret-in-script", 1)) == 2


def test_check_reads_scripts_the_executable_starts_but_nothing_outside_the_folder(tmp_path):
    (tmp_path / "wrapper.sh").write_text("#!/bin/bash\ntimeout 4h ./run.sh \"$@\"\n")
    (tmp_path / "run.sh").write_text(f"python3 train.py --api-key {KEY}\n")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.sh"
    outside.write_text(f"TOKEN={HF}\n")
    sub = tmp_path / "job.sub"
    sub.write_text(f"executable = wrapper.sh\ntransfer_input_files = run.sh, ../{outside.name}\nqueue\n")
    found = [f for f in check_file(sub, CHTC).findings if f.code == "secret-in-script"]
    assert len(found) == 1 and "run.sh line 1" in found[0].message and "sk-***" in found[0].message
    outside.unlink()


def test_check_survives_a_script_name_the_os_refuses(tmp_path):
    # Found by the submit-file fuzz: a 300-character input name made stat() raise ENAMETOOLONG.
    sub = tmp_path / "job.sub"
    sub.write_text(f"executable = run.sh\ntransfer_input_files = {'A' * 300}.sh\nqueue\n")
    (tmp_path / "run.sh").write_text("exec python3 train.py\n")
    report = check_file(sub, CHTC)
    assert not [f for f in report.findings if f.code == "secret-in-script"]


def test_redact_masks_url_passwords():
    assert redact("git clone https://me:s3cretpw@example.org/r.git") == \
        "git clone https://me:***@example.org/r.git"
    assert shell_command(["x", "--k=<secret:api_key>"]) == 'x --k="$(cat secrets/api_key)"'


LEAKY = """
import argparse
import torch
p = argparse.ArgumentParser()
p.add_argument("--api-key")
p.add_argument("--db")
a = p.parse_args()
assert a.api_key.startswith("sk-live-")   # the script itself gets the real value
model = torch.nn.Linear(8, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for _ in range(50):
    loss = model(torch.randn(4, 8)).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""


def test_profiled_script_gets_its_secret_but_the_profile_does_not(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "leaky.py").write_text(LEAKY)
    code = main(["profile", "leaky.py", "--steps", "2", "--warmup", "1", "--json", "--",
                 "--api-key", KEY, "--db", "postgres://me:s3cretpw@db/x"])
    assert code == 0
    captured = capsys.readouterr()
    saved = json.loads((tmp_path / "profiles" / "leaky.json").read_text())
    assert saved["args"] == ["--api-key", "<secret:api_key>", "--db", "postgres://me:<secret:url_password>@db/x"]
    for secret in (KEY, "s3cretpw"):
        assert secret not in captured.out + captured.err
        assert secret not in (tmp_path / "profiles" / "leaky.json").read_text()
    assert "<secret:api_key>" in captured.err and "chmod 600" in captured.err
