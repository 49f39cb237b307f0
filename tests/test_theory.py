"""The simulator against queueing and checkpointing theory.

M/M/c: mean wait vs Erlang C (c = 1, 8, 100 at utilization 0.8-0.95), Little's law,
utilization = λ/(cμ). One long task under exponential evictions vs Daly's expected wall time,
the simulated optimal interval vs Daly's τ_opt, and the no-checkpoint growth M·e^{R/M}(e^{T_s/M} − 1).
The default run checks M/M/c for c = 1, 8 and 100 twice: the engine's waits equal the FCFS
recursion on its own draws exactly (no statistical error, so any bias fails) and the draws are
the scenario's exponentials; and Erlang C, Little's law and the utilization within a few percent
and the replications' CI. The high-precision grid (within 3% and the CI, 10⁶ tasks per case) and
the README's bounds that need long runs (Daly within 0.1%, τ_opt within 1.5%) are marked slow.
"""

from __future__ import annotations

import heapq
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


def mmc_scenario(c: int, rho: float, tasks: int, warmup: float, seed: int = 1) -> Scenario:
    """c identical GPUs, Poisson arrivals at λ = ρc per hour, exponential work of mean 1 h."""
    lam, mu = rho * c, 1.0
    horizon = 0.97 * tasks / lam  # arrivals go on past the horizon: no drain at the end
    return Scenario.from_dict({
        "name": f"mm{c}", "seed": seed, "warmup_hours": warmup, "horizon_hours": horizon,
        "fair_share": "none", "eviction": "none",
        "pool": {"name": f"c{c}", "slots": [{"gpu": "A100-SXM4-80GB", "count": c}]},
        "workload": {"tasks": tasks, "arrival": {"dist": "exponential", "mean": 1 / lam},
                     "work_hours": {"dist": "exponential", "mean": 1 / mu},
                     "reference_gpu": "A100-SXM4-80GB"},
    })


def mmc(c: int, rho: float, tasks: int, warmup: float, replications: int, seed: int = 1):
    lam, mu = rho * c, 1.0
    rep = replicate(mmc_scenario(c, rho, tasks, warmup, seed), replications, seed, workers=0)
    return rep.summary, theory.mmc_mean_wait(lam, mu, c), lam / (c * mu), lam


def fcfs_starts(submit: np.ndarray, work: np.ndarray, c: int) -> np.ndarray:
    """Start times in a first-come-first-served queue with c identical servers (the
    Kiefer–Wolfowitz recursion): each task, in order of arrival, takes the server free first."""
    free = [0.0] * c
    starts = np.empty(len(submit))
    for i, (a, s) in enumerate(zip(submit, work, strict=True)):
        starts[i] = max(a, heapq.heappop(free))
        heapq.heappush(free, starts[i] + s)
    return starts


def assert_exponential(x: np.ndarray, mean: float) -> None:
    """x looks like draws of an exponential of this mean: sample mean within 4 standard errors
    and the Kolmogorov–Smirnov distance below its 1% critical value (detects a ~3% scale error
    at n = 20,000)."""
    n = len(x)
    assert abs(x.mean() - mean) < 4 * mean / math.sqrt(n)
    cdf = 1 - np.exp(-np.sort(x) / mean)
    i = np.arange(1, n + 1)
    assert max((i / n - cdf).max(), (cdf - (i - 1) / n).max()) < 1.63 / math.sqrt(n)


@pytest.mark.parametrize(("c", "rho"), [(1, 0.8), (8, 0.9), (100, 0.95)])
def test_mmc_waits_are_exactly_the_fcfs_recursion_on_the_engines_own_draws(c, rho) -> None:
    """The cheap stand-in for the high-precision M/M/c runs (marked slow below): instead of
    estimating the mean wait to 3% from 10⁶ tasks, one run of 20,000 tasks checks that every
    task's wait is exactly what an M/M/c FCFS queue gives for the engine's own arrival and work
    draws (so a bias of any size, 5% or 0.1%, fails), and that those draws are exponentials of
    the scenario's means. With Erlang C (`theory.erlang_c`, checked against the textbook formula
    above) that pins the mean wait; the Erlang C comparison itself runs in the test above."""
    sc = mmc_scenario(c, rho, tasks=20_000, warmup=0.0, seed=3)
    tasks = run(sc, 3).tasks
    tasks = tasks[tasks["submit_hours"].notna()].sort_values("submit_hours")
    submit = tasks["submit_hours"].to_numpy()
    work = tasks["work_hours"].to_numpy()
    engine = tasks["first_start_hours"].to_numpy()
    expected = fcfs_starts(submit, work, c)
    started = ~np.isnan(engine)
    assert started.sum() > 0.95 * len(tasks)
    np.testing.assert_allclose(engine[started], expected[started], rtol=0, atol=1e-9)
    # still waiting at the end of the run: the recursion starts them no earlier than the end
    assert (expected[~started] >= sc.horizon_hours - 1e-9).all()
    assert (expected > submit).mean() > 0.3  # the queue was busy: many tasks did wait
    assert_exponential(np.diff(submit), 1 / (rho * c))
    assert_exponential(work, 1.0)


def test_fcfs_recursion_and_exponential_check_catch_what_they_should() -> None:
    """The two helpers above can fail: a slower server or a 5% slower arrival stream is seen."""
    submit, work = np.array([0.0, 0.1, 0.2, 5.0]), np.array([1.0, 1.0, 1.0, 1.0])
    assert fcfs_starts(submit, work, 1).tolist() == [0.0, 1.0, 2.0, 5.0]
    assert fcfs_starts(submit, work, 2).tolist() == [0.0, 0.1, 1.0, 5.0]
    draws = np.random.default_rng(5).exponential(1.0, 20_000)
    assert_exponential(draws, 1.0)
    with pytest.raises(AssertionError):
        assert_exponential(draws, 1.05)


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


# Within 3% and inside the replications' 95% CI (the README's figure), with `-m slow`: about
# 6 minutes on 2 cores. The default run has the exact-recursion check above instead.
MMC_PRECISE = [
    pytest.param(1, 0.8, 200_000, 500.0, 10, marks=pytest.mark.slow),
    pytest.param(8, 0.9, 200_000, 200.0, 10, marks=pytest.mark.slow),
    pytest.param(100, 0.95, 300_000, 20.0, 8, marks=pytest.mark.slow),
    pytest.param(1, 0.9, 300_000, 1000.0, 16, marks=pytest.mark.slow),
    pytest.param(8, 0.95, 300_000, 500.0, 12, marks=pytest.mark.slow),
    pytest.param(100, 0.8, 300_000, 10.0, 6, marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("c", "rho", "tasks", "warmup", "reps"), MMC_PRECISE)
def test_mmc_high_precision(c, rho, tasks, warmup, reps) -> None:
    s, wq, util, _lam = mmc(c, rho, tasks, warmup, reps, seed=12)
    wait = s["mean_wait_hours"]
    assert wait["mean"] == pytest.approx(wq, rel=MMC_PRECISE_REL)
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


# (6 h, 120 s) and (24 h, 30 s) are checked at 0.1% in the default run below; (2 h, 600 s) needs
# 50,000 tasks for that, so the default run checks it here at 2% and 4 standard errors.
@pytest.mark.parametrize(("mtbf", "cost_s"), [(2.0, 600.0)])
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


# The README's bounds (tests/test_readme_figures.py reads them there and checks they are these).
DALY_WALL_REL = 0.001     # "Daly's expected wall time ... within 0.1%"
DALY_TAU_REL = 0.015      # "the simulated optimal interval within 1.5% of Daly's τ_opt"
MMC_PRECISE_REL = 0.03    # "M/M/c ... within 3% and the CI in the slow run"
# (M h, δ s, tasks): enough tasks that 0.1% is at least 3 standard errors of the mean
DALY_CASES = [
    pytest.param(2.0, 600.0, 50_000, marks=pytest.mark.slow),  # about 30 s on 2 cores
    (6.0, 120.0, 14_000),
    (24.0, 30.0, 4_000),
]


@pytest.mark.parametrize(("mtbf", "cost_s", "tasks"), DALY_CASES)
def test_daly_expected_wall_time_within_the_readme_bound(mtbf, cost_s, tasks) -> None:
    delta, restart = cost_s / 3600, 300 / 3600
    tau = 24.0 / round(24.0 / theory.daly_interval(delta, mtbf))  # T_s/τ whole
    wall = long_tasks(mtbf, cost_s, 300.0, tau, tasks=tasks, seed=21)
    expected = theory.daly_wall_time(24.0, tau, delta, restart, mtbf)
    se = wall.std(ddof=1) / math.sqrt(len(wall))
    assert 3 * se <= DALY_WALL_REL * expected  # the bound is tight enough to mean something
    assert wall.mean() == pytest.approx(expected, rel=DALY_WALL_REL)


@pytest.mark.slow
@pytest.mark.parametrize(("mtbf", "cost_s"), [(6.0, 120.0), (24.0, 30.0)])
def test_simulated_optimal_interval_within_the_readme_bound(mtbf: float, cost_s: float) -> None:
    """Nine intervals within ±30% of τ_opt, 20,000 tasks each with the same random numbers; the
    minimum of the fitted a + b/τ + c·τ (the shape of T_w near its minimum) is Daly's τ_opt."""
    delta = cost_s / 3600
    t_opt = theory.daly_interval(delta, mtbf)
    ks = sorted({round(24.0 / (t_opt * f)) for f in np.linspace(0.7, 1.3, 9)})
    taus = np.array([24.0 / k for k in ks])
    means = np.array([long_tasks(mtbf, cost_s, 300.0, t, tasks=20_000, seed=11).mean()
                      for t in taus])
    coef, *_ = np.linalg.lstsq(np.c_[np.ones_like(taus), 1 / taus, taus], means, rcond=None)
    assert math.sqrt(coef[1] / coef[2]) == pytest.approx(t_opt, rel=DALY_TAU_REL)


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
