"""The simulator against queueing and checkpointing theory.

M/M/c: mean wait vs Erlang C (c = 1, 8, 100 at utilization 0.8-0.95), Little's law,
utilization = λ/(cμ). One long task under exponential evictions vs Daly's expected wall time,
the simulated optimal interval vs Daly's τ_opt, and the no-checkpoint growth M·e^{R/M}(e^{T_s/M} − 1).
The default run checks M/M/c within 3% for c = 1, 8 and 100 (one utilization each) and every
other law with a sensible tolerance; the rest of the high-precision grid is marked slow.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator import Scenario, replicate, run, theory


@pytest.fixture(autouse=True)
def _slow_only_when_asked(request: pytest.FixtureRequest) -> None:
    """Keep @slow checks out of the default run even without a project-wide deselect."""
    if request.node.get_closest_marker("slow") and "slow" not in (
            request.config.getoption("markexpr") or ""):
        pytest.skip("slow check: run with -m slow")


# --- the formulas themselves ---------------------------------------------------------------


def test_erlang_c_single_server_is_rho() -> None:
    for rho in (0.1, 0.5, 0.9, 0.99):
        assert theory.erlang_c(1, rho) == pytest.approx(rho)
        assert theory.mmc_mean_wait(rho, 1.0, 1) == pytest.approx(rho / (1 - rho))


def test_erlang_c_matches_the_textbook_formula_and_is_stable_for_many_servers() -> None:
    def direct(c: int, a: float) -> float:  # log-space textbook formula
        logs = [k * math.log(a) - math.lgamma(k + 1) for k in range(c)]
        top = c * math.log(a) - math.lgamma(c + 1) + math.log(c / (c - a))
        m = max(*logs, top)
        s = sum(math.exp(x - m) for x in logs)
        return math.exp(top - m) / (s + math.exp(top - m))

    for c, rho in ((2, 0.5), (8, 0.9), (100, 0.95), (1000, 0.99)):
        assert theory.erlang_c(c, c * rho) == pytest.approx(direct(c, c * rho), rel=1e-9)
    assert 0.0 < theory.erlang_c(5000, 4500.0) < 1.0
    assert theory.erlang_c(8, 7.2) == pytest.approx(0.7015, abs=1e-4)


def test_daly_formulas() -> None:
    m, d, r = 6.0, 120 / 3600, 300 / 3600
    # τ_opt is (nearly) the minimiser of T_w
    grid = np.linspace(0.2, 2.0, 4000)
    tw = [theory.daly_wall_time(24.0, t, d, r, m) for t in grid]
    assert grid[int(np.argmin(tw))] == pytest.approx(theory.daly_interval(d, m), rel=0.01)
    assert theory.young_interval(d, m) == pytest.approx(math.sqrt(2 * d * m))
    assert theory.daly_interval(20.0, 6.0) == 6.0  # δ ≥ 2M
    # the exact expression equals Daly's when T_s/τ is whole
    assert theory.daly_wall_time_exact(24, 0.6, d, r, m) == pytest.approx(
        theory.daly_wall_time(24, 0.6, d, r, m))
    assert theory.no_checkpoint_wall_time(6.0, 0.0, 6.0) == pytest.approx(6.0 * (math.e - 1))


# --- M/M/c --------------------------------------------------------------------------------


def mmc(c: int, rho: float, tasks: int, warmup: float, replications: int, seed: int = 1):
    lam, mu = rho * c, 1.0
    horizon = 0.97 * tasks / lam  # arrivals go on past the horizon: no drain at the end
    sc = Scenario.from_dict({
        "name": f"mm{c}", "seed": seed, "warmup_hours": warmup, "horizon_hours": horizon,
        "fair_share": "none", "eviction": "none",
        "pool": {"name": f"c{c}", "slots": [{"gpu": "A100-SXM4-80GB", "count": c}]},
        "workload": {"tasks": tasks, "arrival": {"dist": "exponential", "mean": 1 / lam},
                     "work_hours": {"dist": "exponential", "mean": 1 / mu},
                     "reference_gpu": "A100-SXM4-80GB"},
    })
    rep = replicate(sc, replications, seed, workers=0)
    return rep.summary, theory.mmc_mean_wait(lam, mu, c), lam / (c * mu), lam


MMC_DEFAULT = [  # (c, ρ, tasks, warmup, replications, tolerance on the mean wait)
    (1, 0.8, 30_000, 200.0, 8, 0.10),
    (8, 0.9, 30_000, 100.0, 8, 0.08),
    (100, 0.95, 60_000, 20.0, 6, 0.08),
]


@pytest.mark.parametrize(("c", "rho", "tasks", "warmup", "reps", "tol"), MMC_DEFAULT)
def test_mmc_against_erlang_c_littles_law_and_utilization(c, rho, tasks, warmup, reps, tol) -> None:
    s, wq, util, lam = mmc(c, rho, tasks, warmup, reps)
    wait = s["mean_wait_hours"]
    assert wait["mean"] == pytest.approx(wq, rel=tol)
    assert wait["ci95_low"] <= wq <= wait["ci95_high"]
    u = s["pool_utilization"]
    assert u["mean"] == pytest.approx(util, rel=0.01)
    assert u["ci95_low"] - 0.002 <= util <= u["ci95_high"] + 0.002
    # Little's law: time-average number waiting = arrival rate × mean wait (per replication)
    assert s["mean_tasks_waiting"]["mean"] == pytest.approx(
        s["submitted_per_hour"]["mean"] * wait["mean"], rel=0.03)
    assert s["submitted_per_hour"]["mean"] == pytest.approx(lam, rel=0.01)


# Within 3% and inside the replications' 95% CI: one case per c in the default run (about
# 90 s on 2 cores), the rest of the 0.8-0.95 grid with `-m slow`.
MMC_PRECISE = [
    (1, 0.8, 200_000, 500.0, 10), (8, 0.9, 200_000, 200.0, 10), (100, 0.95, 300_000, 20.0, 8),
    pytest.param(1, 0.9, 300_000, 1000.0, 16, marks=pytest.mark.slow),
    pytest.param(8, 0.95, 300_000, 500.0, 12, marks=pytest.mark.slow),
    pytest.param(100, 0.8, 300_000, 10.0, 6, marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("c", "rho", "tasks", "warmup", "reps"), MMC_PRECISE)
def test_mmc_high_precision(c, rho, tasks, warmup, reps) -> None:
    s, wq, util, _lam = mmc(c, rho, tasks, warmup, reps, seed=12)
    wait = s["mean_wait_hours"]
    assert wait["mean"] == pytest.approx(wq, rel=0.03)
    assert wait["ci95_low"] <= wq <= wait["ci95_high"]
    assert s["pool_utilization"]["mean"] == pytest.approx(util, rel=0.005)
    assert s["mean_tasks_waiting"]["mean"] == pytest.approx(
        s["submitted_per_hour"]["mean"] * wait["mean"], rel=0.02)


# --- one task under exponential evictions ---------------------------------------------------


def long_tasks(mtbf: float, cost_s: float, restart_s: float, interval_h: float | None, tasks: int,
               work: float = 24.0, seed: int = 1) -> np.ndarray:
    """Wall times of `tasks` independent single tasks, each with a GPU to itself (an otherwise
    empty pool: an evicted task is matched again at once)."""
    ck: dict = {"restart_seconds": restart_s}
    if interval_h is not None:
        ck.update(mode="periodic", interval_minutes=interval_h * 60, cost_seconds=cost_s)
    sc = Scenario.from_dict({
        "pool": {"name": "empty", "slots": [{"gpu": "A100-SXM4-80GB", "count": tasks}]},
        "eviction": {"time_to_eviction": {"dist": "exponential", "mean": mtbf}},
        "workload": {"tasks": tasks, "work_hours": work, "checkpoint": ck,
                     "reference_gpu": "A100-SXM4-80GB"},
    })
    r = run(sc, seed)
    assert (r.tasks["state"] == "completed").all()
    return r.tasks["finish_hours"].to_numpy()


@pytest.mark.parametrize(("mtbf", "cost_s"), [(2.0, 600.0), (6.0, 120.0), (24.0, 30.0)])
def test_daly_expected_wall_time(mtbf: float, cost_s: float) -> None:
    delta, restart = cost_s / 3600, 300 / 3600
    segments = round(24.0 / theory.daly_interval(delta, mtbf))  # T_s/τ whole
    tau = 24.0 / segments
    wall = long_tasks(mtbf, cost_s, 300.0, tau, tasks=1500)
    expected = theory.daly_wall_time(24.0, tau, delta, restart, mtbf)
    assert wall.mean() == pytest.approx(expected, rel=0.02)
    se = wall.std(ddof=1) / math.sqrt(len(wall))
    assert abs(wall.mean() - expected) < 4 * se + 1e-9


def test_partial_last_segment_matches_the_exact_expression() -> None:
    tau, m, cost_s = 0.7, 6.0, 120.0  # 24/0.7 is not whole
    wall = long_tasks(m, cost_s, 300.0, tau, tasks=1500, seed=3)
    expected = theory.daly_wall_time_exact(24.0, tau, cost_s / 3600, 300 / 3600, m)
    assert wall.mean() == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize(("mtbf", "cost_s"), [(6.0, 120.0), (24.0, 30.0)])
def test_simulated_optimal_interval_is_near_daly(mtbf: float, cost_s: float) -> None:
    delta = cost_s / 3600
    t_opt = theory.daly_interval(delta, mtbf)
    ks = sorted({round(24.0 / (t_opt * f)) for f in (0.4, 0.55, 0.7, 0.85, 1.0, 1.2, 1.45, 1.75, 2.1)})
    taus = np.array([24.0 / k for k in ks])
    means = np.array([long_tasks(mtbf, cost_s, 300.0, t, tasks=2500, seed=k).mean()
                      for t, k in zip(taus, ks, strict=True)])
    # the grid point with the shortest simulated wall time, and the minimum of a fitted
    # a + b/τ + c·τ (the first-order shape of T_w), both within 10% of Daly's τ_opt
    assert taus[int(np.argmin(means))] == pytest.approx(t_opt, rel=0.10)
    coef, *_ = np.linalg.lstsq(np.c_[np.ones_like(taus), 1 / taus, taus], means, rcond=None)
    assert math.sqrt(coef[1] / coef[2]) == pytest.approx(t_opt, rel=0.10)


@pytest.mark.slow
def test_simulated_optimal_interval_short_mtbf() -> None:
    test_simulated_optimal_interval_is_near_daly(2.0, 600.0)


@pytest.mark.parametrize(("work", "mtbf", "restart_s"), [(6.0, 6.0, 300.0), (3.0, 2.0, 0.0),
                                                         (12.0, 6.0, 120.0)])
def test_without_checkpoints_wall_time_grows_exponentially(work, mtbf, restart_s) -> None:
    wall = long_tasks(mtbf, 0.0, restart_s, None, tasks=4000, work=work, seed=5)
    expected = theory.no_checkpoint_wall_time(work, restart_s / 3600, mtbf)
    se = wall.std(ddof=1) / math.sqrt(len(wall))
    assert abs(wall.mean() - expected) < max(4 * se, 0.02 * expected)


def test_no_checkpoint_vs_daly_gap_is_exponential_in_ts_over_m() -> None:
    # 24 h on a pool with M = 6 h: about 335 h without checkpoints, about 27 h with them
    m = 6.0
    none = theory.no_checkpoint_wall_time(24.0, 300 / 3600, m)
    with_ck = theory.daly_wall_time(24.0, 0.6, 120 / 3600, 300 / 3600, m)
    assert none > 10 * with_ck
