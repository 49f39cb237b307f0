"""advisor.logs.calibrate and advisor.logs.stats: the exact Poisson interval, the eviction
rate and run-time distribution, and the scenario fragment the simulator reads."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from advisor.logs import analyze_logs, write_fragment
from advisor.logs.calibrate import MAX_EMPIRICAL_VALUES, calibrate
from advisor.logs.generate import GeneratorConfig, write_log
from advisor.logs.parse import JobRecord, Run
from advisor.logs.stats import chi2_ppf, distribution, gamma_p, poisson_rate_interval
from simulator.distributions import parse_distribution
from simulator.scenario import Scenario

FIXTURES = Path(__file__).parent / "fixtures" / "logs"


# --- stats -----------------------------------------------------------------------------------

def test_chi2_ppf_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for dof in (1, 2, 3, 7, 10, 30, 100, 1000, 20_000):
        for p in (0.001, 0.025, 0.5, 0.975, 0.999):
            assert chi2_ppf(p, dof) == pytest.approx(stats.chi2.ppf(p, dof), rel=1e-6)


def test_gamma_p_edges():
    assert gamma_p(2.0, 0.0) == 0.0
    assert gamma_p(1.0, 1.0) == pytest.approx(1 - math.exp(-1))
    with pytest.raises(ValueError):
        gamma_p(0.0, 1.0)


def test_poisson_interval_known_values():
    lo, hi = poisson_rate_interval(0, 1.0)
    assert lo == 0.0 and hi == pytest.approx(-math.log(0.025))
    lo, hi = poisson_rate_interval(5, 10.0)
    assert (lo, hi) == (pytest.approx(0.162349, rel=1e-5), pytest.approx(1.166833, rel=1e-5))
    with pytest.raises(ValueError):
        poisson_rate_interval(1, 0.0)


def test_poisson_interval_covers_at_least_nominal():
    """The exact interval is conservative: coverage >= 95% whatever the rate."""
    rng = np.random.default_rng(7)
    for mean in (0.5, 3.0, 20.0):
        counts = rng.poisson(mean, size=800)
        cover = np.mean([lo <= mean <= hi for lo, hi in
                         (poisson_rate_interval(int(k), 1.0) for k in counts)])
        assert cover >= 0.95


def test_distribution_ignores_unknowns():
    d = distribution([None, 1.0, 3.0])
    assert d["n"] == 2 and d["max"] == 3.0 and d["mean"] == 2.0
    assert distribution([None])["n"] == 0


# --- calibration -----------------------------------------------------------------------------

def _job(i: int, runs: list[tuple[float, float | None, str]], exit_code: int | None = 0
         ) -> JobRecord:
    j = JobRecord(job=f"7.{i}", cluster=7, proc=i, log="a.log")
    j.runs = [Run(s, e, o) for s, e, o in runs]
    j.preemptions = sum(o == "evicted" for _, _, o in runs)
    j.terminated = exit_code is not None and runs[-1][2] == "terminated"
    j.exit_code = exit_code if j.terminated else None
    return j


def test_rate_counts_exposure_of_every_run_and_censors_open_ones():
    jobs = [
        _job(0, [(0, 3600, "evicted"), (4000, 4000 + 7200, "terminated")]),
        _job(1, [(0, 1800, "held")], exit_code=None),
        _job(2, [(0, None, "open")], exit_code=None),  # still running when the log ends
    ]
    cal = calibrate(jobs, {"a.log": 5400.0}, ["a.log"])
    assert cal.exposure_hours == pytest.approx(1 + 2 + 0.5 + 1.5)
    assert cal.evictions == 1
    assert cal.rate_per_hour == pytest.approx(1 / 5.0)
    lo, hi = poisson_rate_interval(1, 5.0)
    assert cal.rate_ci == (pytest.approx(lo), pytest.approx(hi))
    assert cal.mean_time_to_eviction_hours == pytest.approx(5.0)
    assert cal.mean_time_to_eviction_ci == (pytest.approx(1 / hi), pytest.approx(1 / lo))
    assert cal.work_values == [2.0]  # the good time of the one completed job


def test_no_evictions_gives_none_and_a_lower_bound():
    cal = calibrate([_job(0, [(0, 36000, "terminated")])], {}, ["a.log"])
    assert cal.mean_time_to_eviction_hours is None
    assert cal.mean_time_to_eviction_ci is not None
    lo, hi = cal.mean_time_to_eviction_ci
    assert hi is None and lo == pytest.approx(10 / -math.log(0.025))
    frag = yaml.safe_load(cal.to_yaml())
    assert frag["eviction"] == {"time_to_eviction": "none"}
    assert parse_distribution(frag["eviction"]["time_to_eviction"], "eviction",
                              allow_none=True) is None


def test_fragment_from_fixtures(tmp_path):
    report = analyze_logs(sorted(FIXTURES.glob("*.log")))
    cal = report.calibration
    path = write_fragment(cal, tmp_path / "sub" / "calibration.yaml")
    text = path.read_text()
    assert text == cal.to_yaml()
    assert "# source: HTCondor job event logs campus_cpu_oldformat_newyear.log" in text
    assert "exact Poisson" in text
    frag = yaml.safe_load(text)
    tte = frag["eviction"]["time_to_eviction"]
    assert tte["dist"] == "exponential"
    assert tte["mean"] == pytest.approx(cal.exposure_hours / cal.evictions, rel=1e-3)
    assert "CI" in tte["source"] and "chtc_gpu_modern_iso.log" in tte["source"]
    work = frag["workload"]["work_hours"]
    assert work["dist"] == "empirical" and work["values"] == sorted(work["values"])
    assert len(work["values"]) == report.calibration.work_hours["n"] == 6  # exit code 0 only
    d = parse_distribution(tte, "eviction.time_to_eviction")
    assert _mean(d) == pytest.approx(tte["mean"])
    w = parse_distribution(work, "workload.work_hours")
    assert _mean(w) == pytest.approx(np.mean(work["values"]))


def _mean(dist) -> float:
    m = dist.mean
    return float(m() if callable(m) else m)


def test_generator_truth_is_recovered(tmp_path):
    cfg = GeneratorConfig(jobs=1500, seed=11, eviction_mean_hours=6.0, work_mean_hours=2.0)
    truth = write_log(tmp_path / "g.log", cfg)
    cal = analyze_logs([tmp_path / "g.log"]).calibration
    assert cal.evictions == truth.evictions
    assert cal.exposure_hours == pytest.approx(truth.running_hours, rel=2e-3)
    assert cal.mean_time_to_eviction_ci is not None
    lo, hi = cal.mean_time_to_eviction_ci
    assert hi is not None and lo <= 6.0 <= hi
    assert cal.work_hours["n"] == len(truth.work_hours_exit0)
    assert cal.work_hours["mean"] == pytest.approx(np.mean(truth.work_hours_exit0), rel=2e-3)


def test_many_jobs_keep_evenly_spaced_quantiles():
    jobs = [_job(i, [(0, 60.0 * (i + 1), "terminated")]) for i in range(MAX_EMPIRICAL_VALUES + 500)]
    cal = calibrate(jobs, {}, ["a.log"])
    assert cal.work_hours["n"] == MAX_EMPIRICAL_VALUES + 500
    assert len(cal.work_values) == MAX_EMPIRICAL_VALUES
    assert "quantiles" in cal.to_yaml()
    assert np.mean(cal.work_values) == pytest.approx(cal.work_hours["mean"], rel=1e-3)


def test_fragment_merges_into_a_scenario():
    """The fragment's keys are scenario keys: a scenario with them validates."""
    cal = analyze_logs(sorted(FIXTURES.glob("*.log"))).calibration
    frag = yaml.safe_load(cal.to_yaml())
    d = {"seed": 1, "replications": 2, "pool": "chtc",
         "workload": {"tasks": 10, "request": {"gpus": 1}, **frag["workload"]},
         "eviction": frag["eviction"]}
    s = Scenario.from_dict(d)
    assert s is not None
