"""advisor.traces: readers, the trace's own utilization, derived background, replay."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from advisor.cli import main
from advisor.errors import InputError
from advisor.traces import (
    Trace,
    derive_background,
    load_trace,
    replay_comparison,
    scenario_with_trace_background,
    trace_pool,
    trace_utilization,
    window,
)
from simulator.scenario import Scenario
from simulator.shipped import shipped_path

JOBS = """submit_s,start_s,end_s,gpus,gpu_type
0,0,3600,1,
600,600,7200,2,T4
1200,1800,,1,
1800,,,1,
2400,2400,5400,0.5,
3000,3000,10800,0,
"""
NODES = "gpu_type,gpus\nT4,4\nA10,4\n"


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    jobs, nodes = tmp_path / "jobs.csv", tmp_path / "nodes.csv"
    jobs.write_text(JOBS)
    nodes.write_text(NODES)
    return jobs, nodes


def test_generic_reader(tiny: tuple[Path, Path]) -> None:
    t = load_trace(*tiny)
    assert t.format == "generic"
    j = t.jobs
    assert list(j["gpus"]) == [1, 2, 1, 1, 1, 0]
    assert list(j["gpu_fraction"]) == [1, 1, 1, 1, 0.5, 1]
    assert list(j["censored"]) == [False, False, True, False, False, False]
    assert j["end_s"][2] == 10800  # still running: censored at the trace's last timestamp
    assert math.isnan(j["start_s"][3])
    assert list(t.nodes["gpus"]) == [4, 4] if t.nodes is not None else False


def test_generic_utilization_by_hand(tiny: tuple[Path, Path]) -> None:
    t = load_trace(*tiny)
    w = window(t)
    assert (w.start_s, w.end_s) == (0, 10800)
    # 1 GPU × 3600 s + 2 × 6600 + 1 × 9000 (censored, to the end) + 0.5 × 3000; CPU-only and
    # never-started jobs use no GPU; 8 GPUs × 10800 s.
    u = trace_utilization(t)
    assert u.gpus == 8
    assert u.utilization == pytest.approx((3600 + 13200 + 9000 + 1500) / (8 * 10800))
    assert u.utilization_survivors == 0
    whole = trace_utilization(t, "whole")
    assert whole.utilization == pytest.approx((3600 + 13200 + 9000 + 3000) / (8 * 10800))


def test_generic_derived_background(tiny: tuple[Path, Path]) -> None:
    b = derive_background(load_trace(*tiny))
    assert b.counts == {"jobs": 6, "never_started": 1, "cpu_only": 1, "survivors": 0,
                        "replayed": 4, "censored_replayed": 1, "fractional_gpu": 1}
    one, two = b.entries
    assert one["request"] == {"gpus": 1} and two["request"] == {"gpus": 2}
    assert one["arrival"] == {"dist": "empirical", "values": [pytest.approx(1 / 3)] * 2}
    assert one["work_hours"]["values"] == pytest.approx([1.0, 2.5, 0.5 * 3000 / 3600])
    assert two["arrival"]["values"] == [3.0]  # a single job: one per window
    assert two["work_hours"]["values"] == pytest.approx([6600 / 3600])
    assert b.offered_gpus == pytest.approx(3 * np.mean([1.0, 2.5, 1500 / 3600]) + 2 * 6600 / 3600 / 3)


def test_trace_pool_maps_models(tiny: tuple[Path, Path]) -> None:
    pool = trace_pool(load_trace(*tiny))
    assert [(s["label"], s["gpu"], s["count"]) for s in pool["slots"]] == [("T4", "T4", 4),
                                                                         ("A10", "A10", 4)]


@pytest.mark.parametrize(("text", "match"), [
    ("a,b\n1,2\n", "neither the Alibaba pod-list columns"),
    ("submit_s,start_s,end_s,gpus\n0,10,5,1\n", "before the job's start"),
    ("submit_s,start_s,end_s,gpus\n0,x,5,1\n", "is not a number"),
])
def test_bad_trace(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(InputError, match=match):
        load_trace(p)


def test_scenario_with_trace_background(tiny: tuple[Path, Path], repo: Path) -> None:
    s = Scenario.from_yaml(shipped_path("scenario", "chtc_catdog"))
    new, derived = scenario_with_trace_background(s, load_trace(tiny[0]))
    assert [b.name for b in new.background] == ["trace-1gpu", "trace-2gpu"]
    assert new.background[1].request.gpus == 2 and new.background[0].users == 20
    assert new.workload == s.workload and new.pool == s.pool
    assert any("reference GPU" in n for n in derived.notes)


def test_cli_background_trace(tiny: tuple[Path, Path], tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    d = yaml.safe_load(shipped_path("scenario", "mmc").read_text())
    d["workload"]["tasks"] = 200
    d["warmup_hours"] = 0
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(d))
    code = main(["whatif", str(path), "--background-trace", str(tiny[0]), "--nodes", str(tiny[1]),
                 "--vary", "pool.slots.A100.count=+1", "-r", "2", "--workers", "0", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["scenario"] == "mmc+trace"
    assert doc["trace"]["trace_utilization"]["gpus"] == 8
    assert set(doc["trace"]) >= {"simulated_utilization", "difference", "tolerance",
                                 "within_tolerance", "over_capacity"}
    assert doc["background_trace"]["counts"]["replayed"] == 4
    assert "warning: trace" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["whatif", str(path), "--background-trace", str(bad), "--workers", "0"]) == 2
    assert "Traceback" not in capsys.readouterr().err


# --- the real sample (Alibaba cluster-trace-gpu-v2023), read in place ----------------------

@pytest.fixture
def alibaba(shared_data: Path) -> Trace:
    d = shared_data / "traces" / "alibaba-gpu-2023"
    if not d.is_dir():
        pytest.skip(f"the Alibaba trace sample is not at {d}")
    return load_trace(d / "openb_pod_list_default.csv", d / "openb_node_list_gpu_node.csv")


def test_alibaba_reader_and_pool(alibaba: Trace) -> None:
    j = alibaba.jobs
    assert alibaba.format == "alibaba" and len(j) == 8152
    assert int(j["start_s"].isna().sum()) == 897  # Pending: never scheduled
    assert ((j["gpu_fraction"] < 1) == (j["gpus"].eq(1) & (j["gpu_fraction"] < 1))).all()
    pool = trace_pool(alibaba)
    mapped = {s["label"]: s["gpu"] for s in pool["slots"]}
    assert mapped["T4"] == "T4" and mapped["P100"] == "P100-PCIE-16GB"
    assert mapped["V100M16"] == "V100-PCIE-16GB" and mapped["V100M32"] == "V100-SXM2-32GB"
    assert mapped["G2"] == "A10" and "undisclosed" in pool["assumptions"][0]
    assert sum(s["count"] for s in pool["slots"]) == 6212


def test_alibaba_utilization_matches_a_direct_count(alibaba: Trace) -> None:
    raw = pd.read_csv(alibaba.source)
    w = window(alibaba)
    started = raw[raw["scheduled_time"].notna() & (raw["num_gpu"] > 0)]
    share = np.where(started["num_gpu"] == 1, started["gpu_milli"] / 1000, started["num_gpu"])
    busy = np.clip(np.minimum(started["deletion_time"], w.end_s)
                   - np.maximum(started["scheduled_time"], w.start_s), 0, None)
    expected = float((busy * share).sum()) / (6212 * (w.end_s - w.start_s))
    u = trace_utilization(alibaba)
    assert u.utilization == pytest.approx(expected, rel=1e-9)
    assert u.utilization_in_window + u.utilization_survivors == pytest.approx(u.utilization)


@pytest.mark.parametrize("mode", ["steady", "window"])
def test_alibaba_replay_reproduces_the_trace_utilization(alibaba: Trace, mode: str) -> None:
    r = replay_comparison(alibaba, replications=10, seed=1, mode=mode)
    print("\n" + "\n".join(r.lines()))
    assert not r.over_capacity  # the sample's pods use well under 1% of the node list's GPUs
    # Offered load of the derived process vs the trace's in-window busy GPU-time: equal by
    # construction up to the arrival-rate estimate ((n−1)/(t_last−t_first) vs n/window).
    assert r.offered_utilization == pytest.approx(r.trace.utilization_in_window, rel=0.03)
    # The simulator reproduces what the derived load must give on a pool it does not fill.
    assert r.expected_in_ci, r.lines()
    # The trace is one sample path of the process the replay draws from: its utilization must
    # lie in the replay's 95% prediction interval for one new path.
    assert r.within_tolerance, r.lines()
    assert abs(r.difference) <= r.tolerance


def test_load_beyond_the_pool_saturates(tmp_path: Path) -> None:
    jobs, nodes = tmp_path / "jobs.csv", tmp_path / "nodes.csv"
    # Four 1-GPU jobs always running, every hour a new one, on a node list of 2 GPUs.
    rows = ["submit_s,start_s,end_s,gpus"]
    rows += [f"{h * 3600},{h * 3600},{(h + 4) * 3600},1" for h in range(200)]
    jobs.write_text("\n".join(rows) + "\n")
    nodes.write_text("gpu_type,gpus\nT4,2\n")
    r = replay_comparison(load_trace(jobs, nodes), replications=3)
    assert r.over_capacity and r.offered_utilization == pytest.approx(2.0, rel=0.05)
    assert 0.9 < r.simulated["mean"] <= 1.0  # a fixed pool cannot be more than busy
