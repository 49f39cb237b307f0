"""CLI conventions: one JSON document on stdout, exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from advisor.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_pools_chtc_json(capsys):
    code, out, _ = run_cli(capsys, "pools", "chtc", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["gpus_shared"] == 122
    shared = [g for g in data["gpus"] if not g["backfill_only"]]
    assert sum(g["count"] for g in shared) == 122
    assert all({"gpu", "capability", "memory_gb", "count"} <= set(g) for g in shared)
    tiers = {t["name"]: t for t in data["tiers"]}
    assert [tiers[n]["max_hours"] for n in ("short", "medium", "long")] == [12, 24, 168]
    assert tiers["long"]["per_user_limit_gpus"] == 4
    assert tiers["short"]["per_user_share"] == pytest.approx(2 / 3, abs=1e-3)


def test_gpus_json_has_sources(capsys):
    code, out, _ = run_cli(capsys, "gpus", "--json")
    data = json.loads(out)
    assert code == 0 and data["reference"] == "A100-SXM4-80GB"
    assert len(data["gpus"]) >= 20 and all(g["source"] for g in data["gpus"])


def test_pools_listing_and_human_output(capsys):
    code, out, _ = run_cli(capsys, "pools")
    assert code == 0 and "chtc" in out and "ospool" in out
    code, out, _ = run_cli(capsys, "pools", "ospool")
    assert code == 0 and "Medium" in out and "Long" in out


def test_human_output_goes_to_stderr_under_json(capsys):
    code, out, err = run_cli(capsys, "pools", "chtc", "--json")
    assert code == 0
    assert json.loads(out)["name"] == "chtc"  # nothing but the document on stdout
    assert "Pool chtc: 122 shared GPUs + 150 backfill-only" in err  # the table, on stderr
    assert "Length tiers" in err and "{" not in err
    _, plain_out, plain_err = run_cli(capsys, "pools", "chtc")
    assert "Pool chtc: 122 shared GPUs" in plain_out and plain_err == ""


@pytest.mark.parametrize("argv, needle", [
    (["pools", "nosuchpool"], "is not a shipped pool"),
    (["pools", "chtcc", "--json"], "Did you mean 'chtc'"),
    (["gpus", "--catalog", "/nonexistent.csv"], "no such file"),
])
def test_bad_input_exit_2_without_traceback(capsys, argv, needle):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert needle in err and "Traceback" not in err
    if "--json" in argv:  # the error as one JSON document on stdout
        assert json.loads(out)["exit_code"] == 2
    else:
        assert out == ""


def test_bad_pool_file_through_the_console_script(tmp_path):
    bad = tmp_path / "pool.yaml"
    bad.write_text("name: x\nslots:\n  - {gpu: A100, count: 4}\n")
    proc = subprocess.run([sys.executable, "-m", "advisor.cli", "pools", str(bad), "--json"],
                          capture_output=True, text=True, cwd=Path(__file__).parent)
    assert proc.returncode == 2
    assert "slots[0].gpu = 'A100'" in proc.stderr and "Traceback" not in proc.stderr
    assert json.loads(proc.stdout)["field"] == "slots[0].gpu"  # --json: the error as JSON


def test_bad_usage_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["pools", "--no-such-flag"])
    assert exc.value.code == 2
    assert "To fix" in capsys.readouterr().err
    assert main([]) == 2
