"""`advisor check`: every finding type with its severity, line and named fix; parsing; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from advisor.check import check_file, check_text
from advisor.check.secrets import find_secrets, mask, redact
from advisor.check.submitfile import parse_quantity, parse_submit_text
from advisor.cli import main
from advisor.errors import InputError
from simulator.pool import load_pool

CHTC = load_pool("chtc")
OSPOOL = load_pool("ospool")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "submit"

# A clean CHTC GPU job: every test below adds, drops or changes a line of it.
BASE = [
    "executable = run.sh",
    "log = job_$(Cluster).log",
    "request_cpus = 4",
    "request_memory = 12GB",
    "request_disk = 40GB",
    "request_gpus = 1",
    "gpus_minimum_capability = 7.5",
    '+GPUJobLength = "short"',
    "checkpoint_exit_code = 85",
    "transfer_checkpoint_files = checkpoint.pt",
    "queue 10",
]


def variant(*extra: str, drop: tuple[str, ...] = (), replace: dict[str, str] | None = None) -> list[str]:
    """BASE without the lines starting with `drop`, with `replace`d lines, `extra` before queue."""
    lines = []
    for line in BASE:
        if any(line.startswith(d) for d in drop):
            continue
        for old, new in (replace or {}).items():
            if line.startswith(old):
                line = new
        lines.append(line)
    return lines[:-1] + list(extra) + lines[-1:]


def check(lines: list[str], pool=CHTC):
    return check_text("\n".join(lines) + "\n", pool, path="test.sub")


def line_of(lines: list[str], start: str) -> int:
    return next(i + 1 for i, line in enumerate(lines) if line.startswith(start))


def findings(report, code: str):
    return [f for f in report.findings if f.code == code]


def test_base_is_clean():
    report = check(BASE)
    assert report.findings == [], report.findings
    assert report.exit_code == 0


# (extra lines, dropped lines, changed lines, pool, code, severity, line starts with, the fix names)
CASES = [
    pytest.param(["request_gpu = 1"], ("request_gpus",), None, CHTC, "misspelled-command", "error",
                 "request_gpu =", "request_gpus = 1", id="request_gpu"),
    pytest.param(["transfer_input_file = a.txt"], (), None, CHTC, "misspelled-command", "error",
                 "transfer_input_file", "transfer_input_files = a.txt", id="transfer_input_file"),
    pytest.param(["notifcation = Never"], (), None, CHTC, "misspelled-command", "warning",
                 "notifcation", "notification = Never", id="notification-typo"),
    pytest.param(["request_fpga = 1"], (), None, CHTC, "custom-resource", "warning",
                 "request_fpga", "remove it", id="custom-resource"),
    pytest.param(["zzqx = 3"], (), None, CHTC, "unknown-command", "info", "zzqx", "remove it",
                 id="unknown-command"),
    pytest.param(["+IsResumable = true"], (), None, CHTC, "misspelled-attribute", "error",
                 "+IsResumable", "+is_resumable = true", id="IsResumable"),
    pytest.param(['+is_resumable = "true"'], (), None, CHTC, "resumable-value", "warning",
                 "+is_resumable", "+is_resumable = true", id="is_resumable-quoted"),
    pytest.param([], (), {"+GPUJobLength": '+GPUJobLenght = "short"'}, CHTC, "misspelled-attribute",
                 "error", "+GPUJobLenght", '+GPUJobLength = "short"', id="GPUJobLenght"),
    pytest.param(['+JobDurationCategory = "Long"'], (), None, CHTC, "other-pool-attribute", "warning",
                 "+JobDurationCategory", "+GPUJobLength", id="other-pool-tier-attribute"),
    pytest.param(["requirements = (OpSysMajorVer == 9)", "requirements = (HasSingularity == true)"],
                 (), None, CHTC, "requirements-twice", "error", "requirements = (HasSing",
                 "requirements = (first) && (second)", id="requirements-twice"),
    pytest.param(["request_cpus = 8"], (), None, CHTC, "duplicate-command", "warning",
                 "request_cpus = 8", "keep one request_cpus", id="duplicate"),
    pytest.param([], (), {"request_memory": "request_memory = 16"}, CHTC, "memory-unit", "error",
                 "request_memory", "request_memory = 16GB", id="memory-bare-small"),
    pytest.param([], (), {"request_memory": "request_memory = 8192"}, CHTC, "memory-unit", "info",
                 "request_memory", "request_memory = 8192MB", id="memory-bare-large"),
    pytest.param([], (), {"request_memory": "request_memory = 16GiB"}, CHTC, "unknown-unit", "error",
                 "request_memory", "request_memory = 16GB", id="memory-unknown-unit"),
    pytest.param([], (), {"request_disk": "request_disk = 500"}, CHTC, "disk-unit", "error",
                 "request_disk", "request_disk = 500GB", id="disk-bare-small"),
    pytest.param([], (), {"request_disk": "request_disk = 20000000"}, CHTC, "disk-unit", "info",
                 "request_disk", "request_disk = 19GB", id="disk-bare-large"),
    pytest.param(["gpus_minimum_memory = 16"], (), None, CHTC, "gpu-memory-unit", "warning",
                 "gpus_minimum_memory", "gpus_minimum_memory = 16GB", id="gpu-memory-bare"),
    pytest.param([], ("request_cpus",), None, CHTC, "no-request-cpus", "warning", None,
                 "request_cpus = 4", id="no-request-cpus"),
    pytest.param([], ("request_memory",), None, CHTC, "no-request-memory", "warning", None,
                 "request_memory = 8GB", id="no-request-memory"),
    pytest.param([], ("request_disk",), None, CHTC, "no-request-disk", "info", None,
                 "request_disk = 20GB", id="no-request-disk"),
    pytest.param([], ("request_gpus",), None, CHTC, "gpus-without-request-gpus", "error",
                 "gpus_minimum_capability", "request_gpus = 1", id="gpus-without-request-gpus"),
    pytest.param(["+WantGPULab = true"], (), None, CHTC, "want-gpulab", "info", "+WantGPULab",
                 "delete the line", id="WantGPULab"),
    pytest.param(["requirements = (CUDACapability >= 8.0)"], (), None, CHTC, "legacy-gpu-attribute",
                 "warning", "requirements", "gpus_minimum_capability = 8.0", id="CUDACapability"),
    pytest.param(["requirements = (TARGET.CUDAGlobalMemoryMb >= 30000)"], (), None, CHTC,
                 "legacy-gpu-attribute", "warning", "requirements", "gpus_minimum_memory = 30000MB",
                 id="CUDAGlobalMemoryMb"),
    pytest.param([], (), {"gpus_minimum_capability": "gpus_minimum_capability = 9.5"}, CHTC,
                 "no-match", "error", "gpus_minimum_capability", "gpus_minimum_capability to at most 9.0",
                 id="no-slot-capability"),
    pytest.param(["gpus_minimum_memory = 200GB"], (), None, CHTC, "no-match", "error",
                 "gpus_minimum_memory", "gpus_minimum_memory to at most 144384MB", id="no-slot-gpu-memory"),
    pytest.param([], (), {"request_memory": "request_memory = 600GB"}, CHTC, "no-match", "error",
                 "request_memory", "request_memory to at most 240GB", id="no-slot-memory"),
    pytest.param([], (), {"request_cpus": "request_cpus = 64"}, CHTC, "no-match", "error",
                 "request_cpus", "request_cpus to at most 16", id="no-slot-cpus"),
    pytest.param([], (), {"request_disk": "request_disk = 2TB"}, CHTC, "no-match", "error",
                 "request_disk", "request_disk to at most 800GB", id="no-slot-disk"),
    pytest.param([], (), {"request_gpus": "request_gpus = 16"}, CHTC, "no-match", "error",
                 "request_gpus", "request_gpus = 10", id="no-slot-gpus-per-server"),
    pytest.param(["gpus_minimum_memory = 100GB"], (), None, CHTC, "few-matches", "info",
                 "request_gpus", "relax", id="few-matches"),
    pytest.param([], (), {"+GPUJobLength": "+GPUJobLength = short"}, CHTC, "tier-unquoted", "error",
                 "+GPUJobLength", '+GPUJobLength = "short"', id="tier-unquoted"),
    pytest.param([], (), {"+GPUJobLength": '+GPUJobLength = "shrot"'}, CHTC, "unknown-tier", "error",
                 "+GPUJobLength", '+GPUJobLength = "short"', id="unknown-tier"),
    pytest.param([], (), {"+GPUJobLength": '+GPUJobLength = "long"', "request_gpus": "request_gpus = 8"},
                 CHTC, "tier-user-limit", "error", "+GPUJobLength", "at most 4 GPUs", id="long-tier-limit"),
    pytest.param([], (), {"+GPUJobLength": '+GPUJobLength = "long"'}, CHTC, "tier-user-limit", "info",
                 "+GPUJobLength", "shorter jobs", id="long-tier-many-jobs"),
    pytest.param([], ("+GPUJobLength",), None, CHTC, "no-tier", "info", None,
                 '+GPUJobLength = "medium"', id="no-tier"),
    pytest.param([], ("checkpoint_exit_code", "transfer_checkpoint_files"),
                 {"+GPUJobLength": '+GPUJobLength = "long"'}, CHTC, "long-without-checkpoint",
                 "warning", "+GPUJobLength", "checkpoint_exit_code = 85", id="long-no-checkpoint"),
    pytest.param([], ("checkpoint_exit_code", "transfer_checkpoint_files"), None, CHTC,
                 "long-without-checkpoint", "info", "+GPUJobLength", "checkpoint_exit_code = 85",
                 id="short-no-checkpoint"),
    pytest.param([], ("checkpoint_exit_code", "transfer_checkpoint_files"),
                 {"+GPUJobLength": '+JobDurationCategory = "Long"'}, OSPOOL, "long-without-checkpoint",
                 "warning", "+JobDurationCategory", "checkpoint_exit_code = 85", id="ospool-no-checkpoint"),
    pytest.param(["+is_resumable = true"], ("checkpoint_exit_code", "transfer_checkpoint_files"), None,
                 CHTC, "resumable-without-checkpoint", "warning", "+is_resumable",
                 "checkpoint_exit_code = 85", id="resumable-no-checkpoint"),
    pytest.param([], ("transfer_checkpoint_files",), None, CHTC, "checkpoint-files", "info",
                 "checkpoint_exit_code", "transfer_checkpoint_files = checkpoint.pt", id="checkpoint-files"),
    pytest.param(['environment = "OPENAI_API_KEY=sk-abcdefghijklmnop1234 X=1"'], (), None, CHTC,
                 "secret", "error", "environment", "transfer_input_files", id="secret-environment"),
    pytest.param(['arguments = "--hf-token hf_abcdefghijklmnopqrstuv --epochs 3"'], (), None, CHTC,
                 "secret", "error", "arguments", "chmod 600", id="secret-arguments"),
    pytest.param(["transfer_input_files = train.py, .env"], (), None, CHTC, "secret-file", "warning",
                 "transfer_input_files", "never a whole .env", id="dotenv"),
    pytest.param(["getenv = true"], (), None, CHTC, "getenv", "warning", "getenv",
                 "getenv = PATH, LANG", id="getenv"),
    pytest.param(["transfer_input_files = file:///staging/me/big.tar"], (), None, CHTC,
                 "staging-requirement", "error", "transfer_input_files",
                 "requirements = (HasCHTCStaging == true)", id="staging-requirement"),
    pytest.param([], ("executable",), None, CHTC, "no-executable", "error", None,
                 "executable = run.sh", id="no-executable"),
    pytest.param([], ("queue",), None, CHTC, "no-queue", "error", None, "queue", id="no-queue"),
]


@pytest.mark.parametrize("extra, drop, replace, pool, code, severity, at, fix", CASES)
def test_each_finding(extra, drop, replace, pool, code, severity, at, fix):
    lines = variant(*extra, drop=drop, replace=replace)
    report = check(lines, pool)
    found = findings(report, code)
    assert len(found) == 1, (code, report.findings)
    f = found[0]
    assert f.severity == severity
    if at is None:
        assert f.line is None
    else:
        # the last line that starts so (a repeated command is reported where it repeats)
        want = max(i + 1 for i, line in enumerate(lines) if line.startswith(at))
        assert f.line == want
    assert fix in f.fix, f.fix
    assert f.message and f.command
    assert report.exit_code == (1 if report.errors else 0)


def test_misspelled_request_gpu_is_analysed_as_meant():
    lines = variant("request_gpu = 1", drop=("request_gpus",),
                    replace={"gpus_minimum_capability": "gpus_minimum_capability = 9.5"})
    report = check(lines)
    assert report.analysis["gpus_assumed_from"] == "request_gpu"
    assert report.analysis["matching_gpus"] == 0
    assert findings(report, "no-match")[0].line == line_of(lines, "gpus_minimum_capability")


def test_combined_clauses_exclude_everything():
    # capability >= 9.0 leaves the H100s and H200s, which have 12 CPUs per GPU; 14 CPUs fit only
    # A100 servers (16 per GPU): each clause alone leaves GPUs, together none.
    lines = variant(replace={"gpus_minimum_capability": "gpus_minimum_capability = 9.0",
                             "request_cpus": "request_cpus = 14"})
    report = check(lines)
    nomatch = findings(report, "no-match")
    assert len(nomatch) == 1 and nomatch[0].severity == "error"
    assert nomatch[0].line == line_of(lines, "queue")
    assert "capability >= 9" in nomatch[0].message and "request_cpus" in nomatch[0].message


def test_analysis_counts_per_clause():
    report = check(variant("gpus_minimum_memory = 40GB"))
    rows = {r["command"]: r for r in report.analysis["clauses"]}
    # capability >= 7.5 excludes the 4 P100s; >= 40 GB of GPU memory also the 8 RTX 2080 Ti
    assert rows["gpus_minimum_capability"]["excludes_gpus"] == 4
    assert rows["gpus_minimum_memory"]["excludes_gpus"] == 4 + 8
    assert rows["gpus_minimum_memory"]["line"] == len(BASE)  # inserted just before queue
    # without +is_resumable the 150 owned GPUs are out of reach
    assert rows["+is_resumable"]["excludes_gpus"] == 150
    assert report.analysis["matching_gpus"] == 122 - 12
    assert report.analysis["pool_gpus"] == 272


def test_requirements_extending_itself_is_not_a_duplicate():
    report = check(variant("requirements = (A == 1)", "requirements = $(requirements) && (B == 2)"))
    assert findings(report, "requirements-twice") == []


def test_user_macros_are_not_unknown_commands():
    report = check(variant("mem = 12GB", "request_memory = $(mem)", drop=("request_memory",)))
    assert [f for f in report.findings if f.code in ("unknown-command", "misspelled-command")] == []
    assert findings(report, "memory-unit") == []   # $(mem) expands to 12GB


# --- parsing --------------------------------------------------------------------------------

def test_line_numbers_with_comments_and_continuations():
    text = ("# comment\n\nexecutable = run.sh\narguments = a \\\n  b \\\n  c\n"
            "request_gpu = 1\nrequirements = (A)\nrequirements = (B)\nqueue 3\n")
    sub = parse_submit_text(text)
    assert [(a.line, a.key) for a in sub.assignments] == [
        (3, "executable"), (4, "arguments"), (7, "request_gpu"), (8, "requirements"), (9, "requirements")]
    assert sub.value("arguments") == "a b c"
    assert sub.value("requirements") == "(B)"           # what HTCondor keeps: the last
    assert [a.line for a in sub.all("Requirements")] == [8, 9]
    assert sub.queue_lines == [(10, "3")]


def test_attribute_spellings_are_one_attribute():
    sub = parse_submit_text('+GPUJobLength = "short"\nMY.gpujoblength = "long"\nqueue\n')
    assert [a.norm for a in sub.assignments] == ["+gpujoblength", "+gpujoblength"]
    assert sub.value("+GPUJobLength") == '"long"'


def test_unparseable_file_is_input_error():
    with pytest.raises(InputError, match="line 2"):
        parse_submit_text("executable = a\nthis is not a command\nqueue\n")


@pytest.mark.parametrize("text, bare_mb, mb, unit", [
    ("6144MB", 1.0, 6144, "MB"), ("16 GB", 1.0, 16384, "GB"), ("16g", 1.0, 16384, "G"),
    ("1T", 1.0, 1024 ** 2, "T"), ("500", 1 / 1024, 500 / 1024, ""), ("2048K", 1.0, 2.0, "K"),
    ("4000", 1.0, 4000, ""),
])
def test_parse_quantity(text, bare_mb, mb, unit):
    q = parse_quantity(text, bare_mb)
    assert q is not None and q.mb == pytest.approx(mb) and q.unit == unit
    assert q.bare == (unit == "")


def test_parse_quantity_expressions_and_bad_units():
    assert parse_quantity("MAX({4096, MemoryUsage})", 1.0).mb is None
    assert parse_quantity("16GiB", 1.0) is None


# --- secrets ----------------------------------------------------------------------------------

SECRET_VALUES = ["sk-proj-FAKEFAKEFAKEFAKE1234", "hf_FAKEfakeFAKEfakeFAKE", "hunter2secret",
                 "ghp_abcdefghijklmnopqrstuvwxyz123456", "AKIAABCDEFGHIJKLMNOP"]


def test_masking():
    assert mask("sk-proj-FAKEFAKEFAKEFAKE1234") == "sk-***"
    assert mask("hf_FAKEfakeFAKEfakeFAKE") == "hf_***"
    assert mask("hunter2secret") == "***"
    text = "PASSWORD=hunter2secret --api-key sk-abcdefghijkl1234 AWS=AKIAABCDEFGHIJKLMNOP"
    out = redact(text)
    assert "hunter2secret" not in out and "abcdefghijkl1234" not in out and "AKIAABCD" not in out
    assert "PASSWORD=***" in out and "sk-***" in out


def test_not_secrets():
    assert find_secrets("--max-tokens 512 --tokenizer gpt2 --author me --lr 0.1") == []
    assert find_secrets("TOKEN_FILE=/home/me/token.txt HF_HOME=/tmp") == []
    assert find_secrets("--token $ENV(HF_TOKEN)") == []


def test_secrets_never_printed(tmp_path, capsys):
    sub = tmp_path / "s.sub"
    sub.write_text("executable = run.sh\n"
                   f'environment = "DB_PASSWORD={SECRET_VALUES[2]} OPENAI_API_KEY={SECRET_VALUES[0]}"\n'
                   f'arguments = "--hf-token {SECRET_VALUES[1]} --gh {SECRET_VALUES[3]}"\n'
                   f'+AWS_KEY = "{SECRET_VALUES[4]}"\n'
                   "request_gpus = 1\nqueue\n")
    for argv in (["check", str(sub)], ["check", str(sub), "--json"]):
        code = main(argv)
        out, err = capsys.readouterr()
        assert code == 1
        for value in SECRET_VALUES:
            assert value not in out + err
            assert value[5:] not in out + err
    report = check_file(sub)
    secrets = findings(report, "secret")
    assert {f.line for f in secrets} == {2, 3, 4}
    assert len(secrets) == 5
    assert any("sk-***" in f.message for f in secrets) and any("hf_***" in f.message for f in secrets)


# --- examples and the CLI ---------------------------------------------------------------------

def test_good_example_has_no_errors_or_warnings():
    report = check_file(EXAMPLES / "good.sub", CHTC)
    assert [f for f in report.findings if f.severity != "info"] == []
    assert report.exit_code == 0


def test_flawed_example_has_the_problems():
    report = check_file(EXAMPLES / "flawed.sub", CHTC)
    codes = {f.code for f in report.findings}
    assert {"secret", "getenv", "memory-unit", "disk-unit", "misspelled-command",
            "gpus-without-request-gpus", "legacy-gpu-attribute", "requirements-twice", "want-gpulab",
            "misspelled-attribute", "unknown-tier", "secret-file", "no-match"} <= codes
    assert report.exit_code == 1


def test_cli_exit_codes_and_json(capsys, tmp_path):
    assert main(["check", str(EXAMPLES / "good.sub")]) == 0
    out, _ = capsys.readouterr()
    assert "nothing to report" in out and "Matching" in out

    assert main(["check", str(EXAMPLES / "flawed.sub"), "--json"]) == 1
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["ok"] is False and data["pool"] == "chtc"
    assert data["summary"]["error"] == len([f for f in data["findings"] if f["severity"] == "error"])
    for f in data["findings"]:
        assert set(f) >= {"severity", "line", "command", "message", "fix", "code"}
        assert f["severity"] in ("error", "warning", "info") and f["fix"]
    assert data["analysis"]["matching_gpus"] == 0

    assert main(["check", str(EXAMPLES / "good.sub"), "--pool", "ospool", "--json"]) == 0
    data = json.loads(capsys.readouterr()[0])
    assert any(f["code"] == "other-pool-attribute" for f in data["findings"])

    assert main(["check", str(tmp_path / "missing.sub")]) == 2
    assert "no such file" in capsys.readouterr()[1]
    bad = tmp_path / "bad.sub"
    bad.write_text("executable = a\n[section]\nqueue\n")
    assert main(["check", str(bad), "--json"]) == 2
    out, err = capsys.readouterr()
    assert json.loads(out)["exit_code"] == 2 and "line 2" in err and "Traceback" not in err
    assert main(["check", str(EXAMPLES / "good.sub"), "--pool", "nosuch"]) == 2


def test_queue_with_an_item_list_spanning_lines():
    report = check(variant(drop=("queue",)) + ["queue lr in (", "  0.1", "  0.01", ")"])
    assert report.findings == []
