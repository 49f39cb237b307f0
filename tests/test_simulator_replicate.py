"""replicate(): confidence intervals, identical results for any number of workers; the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from advisor.cli import main
from simulator import Scenario, replicate, run
from simulator.replicate import aggregate, interval, replication_seeds, t975
from simulator.shipped import shipped_path

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _slow_only_when_asked(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("slow") and "slow" not in (
            request.config.getoption("markexpr") or ""):
        pytest.skip("slow check: run with -m slow")


SMALL = {"name": "small", "seed": 4,
         "pool": {"name": "p", "slots": [{"gpu": "A100-SXM4-80GB", "count": 3},
                                         {"gpu": "L40S", "count": 2}]},
         "eviction": {"time_to_eviction": {"dist": "exponential", "mean": 4.0}},
         "workload": {"tasks": 40, "arrival": {"dist": "exponential", "mean": 0.3},
                      "work_hours": {"dist": "lognormal", "mean": 1.5, "cv": 0.8},
                      "checkpoint": {"interval_minutes": 30, "cost_seconds": 20}}}


def test_student_t_quantiles() -> None:
    assert t975(1) == pytest.approx(12.7062)
    assert t975(10) == pytest.approx(2.2281)
    assert t975(40) == pytest.approx(2.0211, abs=2e-4)
    assert t975(120) == pytest.approx(1.9799, abs=2e-4)
    assert math.isnan(t975(0))


def test_interval_and_aggregate() -> None:
    ci = interval([1.0, 2.0, 3.0, 4.0])
    half = 3.1824 * np.std([1, 2, 3, 4], ddof=1) / 2
    assert ci["mean"] == 2.5
    assert ci["ci95_low"] == pytest.approx(2.5 - half)
    assert ci["ci95_high"] == pytest.approx(2.5 + half)
    one = interval([5.0, float("nan")])
    assert one["mean"] == 5.0 and math.isnan(one["ci95_low"])
    agg = aggregate([{"a": 1.0, "u": {"x": 0.5}}, {"a": 3.0, "u": {"x": 0.7}}])
    assert agg["a"]["mean"] == 2.0
    assert agg["u"]["x"]["mean"] == pytest.approx(0.6)


def test_replications_use_spawned_seeds() -> None:
    sc = Scenario.from_dict(SMALL)
    rep = replicate(sc, 3, 9, workers=0)
    seeds = replication_seeds(9, 3)
    for i in range(3):
        assert rep.runs[i]["makespan_hours"] == run(sc, seeds[i]).summary["makespan_hours"]
    assert rep.replications == 3 and rep.seed == 9
    for key in ("makespan_hours", "mean_wait_hours", "mean_turnaround_hours", "evictions_per_task",
                "goodput_fraction", "pool_utilization"):
        cell = rep.summary[key]
        assert cell["ci95_low"] <= cell["mean"] <= cell["ci95_high"]
    assert set(rep.summary["utilization_by_gpu"]) == {"A100-SXM4-80GB", "L40S"}


def test_same_results_inline_and_on_dask() -> None:
    sc = Scenario.from_dict(SMALL)
    inline = replicate(sc, 4, 2, workers=0)
    seen: list[tuple[int, int]] = []
    dask = replicate(sc, 4, 2, workers=1, progress=lambda d, t: seen.append((d, t)))
    assert inline.summary == dask.summary
    assert inline.runs == dask.runs
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)


@pytest.mark.slow
def test_same_results_on_local_processes() -> None:
    sc = Scenario.from_dict(SMALL)
    assert replicate(sc, 4, 2, workers=0).summary == replicate(sc, 4, 2, workers=2).summary


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", str(shipped_path("scenario", "daly")), "--replications", "5",
                 "--seed", "3", "--workers", "0", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["replications"] == 5
    for key in ("makespan_hours", "mean_wait_hours", "mean_turnaround_hours", "evictions_per_task",
                "goodput_fraction", "pool_utilization"):
        assert set(out["summary"][key]) >= {"mean", "ci95_low", "ci95_high"}
    assert 24.0 < out["summary"]["makespan_hours"]["mean"] < 40.0


def test_cli_human_table_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(shipped_path("scenario", "mmc")), "-r", "2", "-w", "0"]) == 0
    assert "mean_wait_hours" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("workload: {tasks: 1, work_hour: 2}\n")
    assert main(["simulate", str(bad), "--json"]) == 2
    err = capsys.readouterr().err
    assert "work_hour" in err and "work_hours" in err and "Traceback" not in err
    assert main(["simulate", str(tmp_path / "missing.yaml")]) == 2
    assert main(["simulate", str(shipped_path("scenario", "daly")), "-r", "0"]) == 2


def test_cli_default_dask_in_a_subprocess() -> None:
    proc = subprocess.run([sys.executable, "-m", "advisor.cli", "simulate",
                           str(shipped_path("scenario", "daly")), "-r", "3", "--json"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["replications"] == 3


def test_existing_scheduler_address() -> None:
    import logging

    from distributed import LocalCluster

    sc = Scenario.from_dict(SMALL)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster:
        remote = replicate(sc, 3, 5, scheduler=cluster.scheduler_address)
    assert remote.summary == replicate(sc, 3, 5, workers=0).summary
