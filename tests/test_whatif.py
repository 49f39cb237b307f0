"""advisor whatif: variants with common random numbers, paired differences, the command."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from advisor.cli import main
from advisor.whatif import build_variants, compare
from advisor.whatif.compare import METRICS, intervals_overlap, paired_difference
from simulator.scenario import Scenario
from simulator.shipped import shipped_path

REPO = Path(__file__).resolve().parents[1]


def small_mmc(tasks: int = 1200) -> dict[str, Any]:
    """The shipped mmc scenario (8 GPUs, ρ = 0.9) cut down to run in well under a second."""
    d = yaml.safe_load(shipped_path("scenario", "mmc").read_text())
    d["workload"]["tasks"] = tasks
    d["warmup_hours"] = 20
    d["replications"] = 4
    return d


def with_background() -> dict[str, Any]:
    """8 GPUs; a small workload; other users' Poisson jobs keep a quarter of the GPUs busy."""
    return {"name": "bg", "seed": 3, "replications": 4, "warmup_hours": 10,
            "pool": {"name": "p8", "slots": [{"gpu": "A100-SXM4-80GB", "count": 8}]},
            "eviction": "none", "fair_share": "none",
            "workload": {"tasks": 150, "arrival": {"dist": "exponential", "mean": 0.5},
                         "work_hours": {"dist": "exponential", "mean": 1.0},
                         "reference_gpu": "A100-SXM4-80GB", "request": {"gpus": 1}},
            "background": {"name": "others", "users": 5,
                           "arrival": {"dist": "exponential", "mean": 0.5},
                           "work_hours": {"dist": "exponential", "mean": 1.0},
                           "request": {"gpus": 1}}}


def test_paired_difference_by_hand() -> None:
    base = [{"m": 1.0}, {"m": 2.0}, {"m": 3.0}]
    var = [{"m": 2.0}, {"m": 4.0}, {"m": 3.0}]
    d = paired_difference(base, var, "m")  # diffs 1, 2, 0: mean 1, sd 1
    half = 4.3027 * 1.0 / math.sqrt(3)
    assert d["mean"] == 1.0 and d["n"] == 3
    assert d["ci95_low"] == pytest.approx(1 - half) and d["ci95_high"] == pytest.approx(1 + half)
    assert d["relative"] == pytest.approx(0.5) and d["significant"] is False
    nan = paired_difference([{"m": math.nan}, {"m": 1.0}], [{"m": 1.0}, {"m": 2.0}], "m")
    assert nan["n"] == 1 and nan["mean"] == 1.0 and math.isnan(nan["ci95_low"])
    assert intervals_overlap({"ci95_low": 0, "ci95_high": 1}, {"ci95_low": 2, "ci95_high": 3}) is False
    assert intervals_overlap({"ci95_low": 0, "ci95_high": 2}, {"ci95_low": 1, "ci95_high": 3}) is True


def test_identical_variant_differs_by_exactly_zero() -> None:
    s = Scenario.from_dict(small_mmc())
    (same,) = build_variants(s, ["workload.tasks=1200"])
    r = compare(s, [same], workers=0)
    diff = r.variants[0].difference
    for m in METRICS:
        if m == "evictions_per_task":
            assert diff[m]["mean"] == 0.0
            continue
        assert diff[m]["mean"] == 0.0 and diff[m]["ci95_low"] == 0.0 and diff[m]["ci95_high"] == 0.0
        assert diff[m]["significant"] is False
    assert r.variants[0].runs == r.baseline.runs


def test_more_gpus_never_lengthen_the_wait_mmc() -> None:
    s = Scenario.from_dict(small_mmc())
    variants = build_variants(s, ["pool.slots.A100.count=+2"])
    r = compare(s, variants, workers=0)
    base = [run["mean_wait_hours"] for run in r.baseline.runs]
    more = [run["mean_wait_hours"] for run in r.variants[0].runs]
    # FCFS with the same arrivals and work: every task starts no later with more servers.
    assert all(m <= b + 1e-12 for m, b in zip(more, base, strict=True))
    d = r.variants[0].difference["mean_wait_hours"]
    assert d["mean"] < 0 and d["significant"]
    util = r.variants[0].difference["pool_utilization"]
    assert util["mean"] < 0  # the same work spread over 10 GPUs instead of 8


def test_doubling_demand_raises_utilization() -> None:
    s = Scenario.from_dict(with_background())
    variants = build_variants(s, ["background.arrival.mean=*0.5"])
    r = compare(s, variants, workers=0)
    d = r.variants[0].difference["pool_utilization"]
    assert d["mean"] > 0 and d["significant"]
    assert r.variants[0].summary["pool_utilization"]["mean"] > r.baseline.summary["pool_utilization"]["mean"]
    assert r.variants[0].difference["mean_wait_hours"]["mean"] > 0


def test_same_answer_on_dask_and_inline() -> None:
    s = Scenario.from_dict(small_mmc(tasks=300))
    variants = build_variants(s, ["pool.slots.A100.count=+1"])
    inline = compare(s, variants, replications=3, workers=0)
    dask = compare(s, variants, replications=3, workers=1)
    assert dask.to_dict() == inline.to_dict()


def test_cli_json_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mmc.yaml"
    path.write_text(yaml.safe_dump(small_mmc(tasks=400)))
    code = main(["whatif", str(path), "--vary", "pool.slots.A100.count=+2",
                 "--vary", "workload.arrival.mean=*1.25; workload.tasks=300",
                 "--replications", "3", "--seed", "5", "--workers", "0", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["replications"] == 3 and doc["seed"] == 5 and doc["common_random_numbers"] is True
    assert doc["baseline"]["name"] == "baseline" and "difference" not in doc["baseline"]
    assert [v["name"] for v in doc["variants"]] == ["pool.slots.A100.count=+2",
                                                    "workload.arrival.mean=*1.25; workload.tasks=300"]
    v = doc["variants"][1]
    assert v["changes"] == ["workload.arrival.mean: 0.138889 → 0.173611",
                            "workload.tasks: 400 → 300"]
    for m in METRICS:
        assert set(doc["baseline"]["summary"][m]) >= {"mean", "ci95_low", "ci95_high"}
        assert set(v["difference"][m]) >= {"mean", "ci95_low", "ci95_high", "relative",
                                          "significant", "ci_overlap"}


def test_cli_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mmc.yaml"
    path.write_text(yaml.safe_dump(small_mmc(tasks=300)))
    assert main(["whatif", str(path), "--vary", "pool.slots.A100.count=+2", "-r", "3",
                 "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "baseline" in out and "pool.slots.A100.count=+2" in out and "Δ" in out
    assert "mean wait h" in out


def test_cli_pool_override(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(shipped_path("scenario", "chtc_catdog"))
    assert main(["whatif", path, "--pool", "nosuchpool", "--vary", "workload.tasks=10"]) == 2
    assert "is not a shipped pool" in capsys.readouterr().err
