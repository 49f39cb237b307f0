"""`advisor fit PROFILE [--pool P] [--json]`: the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_predict_profiles import make_profile

from advisor.cli import main
from simulator.pool import load_pool

ROW_KEYS = {"gpu", "capability", "memory_gb", "count", "fits", "predicted_memory_gb",
            "predicted_step_time_s", "speedup", "bound"}
BOUNDS = {"compute", "memory_bandwidth", "overhead", "input", "does_not_fit"}


def write(tmp_path: Path, profile: dict, name: str = "p.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(profile))
    return str(path)


def test_json_output_has_the_stable_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["fit", write(tmp_path, make_profile()), "--json"])
    out = capsys.readouterr().out
    assert rc == 0
    data = json.loads(out)
    assert data["rows"]
    pool = load_pool("chtc").gpus_by_type()
    for row in data["rows"]:
        assert ROW_KEYS <= set(row)
        assert row["bound"] in BOUNDS
        assert row["count"] == pool[row["gpu"]]
        assert isinstance(row["fits"], bool)
        assert row["predicted_step_time_s"] > 0 and row["speedup"] > 0
    times = [r["predicted_step_time_s"] for r in data["rows"]]
    assert times == sorted(times)
    assert {r["gpu"] for r in data["rows"]} == set(pool)


def test_ospool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", write(tmp_path, make_profile()), "--pool", "ospool", "--json"]) == 0
    gpus = {r["gpu"] for r in json.loads(capsys.readouterr().out)["rows"]}
    assert gpus == set(load_pool("ospool").gpus_by_type())


def test_people_output_states_the_limits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = make_profile(environment={"torch": "2.13.0+cpu", "cuda": None, "arch_list": []})
    assert main(["fit", write(tmp_path, p)]) == 0
    out = capsys.readouterr().out
    assert "H200" in out and "Limits of the prediction" in out
    assert "not calibrated" in out and "CPU-only" in out
    assert "cu126" in out          # the P100 row says which build would run there


def test_bad_profile_exits_2_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = make_profile()
    del p["step_time_s"]["median"]
    rc = main(["fit", write(tmp_path, p), "--json"])
    captured = capsys.readouterr()
    assert rc == 2
    assert "step_time_s" in captured.err and "Traceback" not in captured.err
    assert json.loads(captured.out)["exit_code"] == 2   # the error as one JSON document


def test_bad_op_class_value_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = make_profile()
    p["op_classes"]["matmul"]["bytes"] = "lots"
    assert main(["fit", write(tmp_path, p)]) == 2
    assert "op_classes.matmul.bytes" in capsys.readouterr().err


def test_missing_or_invalid_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", str(tmp_path / "nope.json")]) == 2
    assert "profile" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["fit", str(bad)]) == 2


def test_unknown_pool_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", write(tmp_path, make_profile()), "--pool", "chtcc"]) == 2
    assert "chtc" in capsys.readouterr().err


def test_nothing_fits_exits_1_with_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = make_profile(peak_memory_bytes={"device": 500 * 1024**3})
    rc = main(["fit", write(tmp_path, p), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert all(not r["fits"] and r["bound"] == "does_not_fit" for r in data["rows"])
