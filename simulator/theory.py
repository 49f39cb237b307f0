"""Closed-form results the simulator is checked against, and that the advisor reuses.

* M/M/c (Erlang C): probability of waiting and mean wait, computed through the Erlang B
  recursion, which is numerically stable for hundreds of servers.
* Checkpointing under exponential interruptions of mean M (Young 1974, Daly 2006): the
  expected wall time of T_s hours of work checkpointed every τ hours at cost δ, with restart
  cost R, and the interval that minimises it; the same without checkpoints; and HTCondor's
  exit-85 checkpoints (`checkpoint_exit_code`), each restarting in place after a short gap,
  each eviction followed by a restart delay (docs/DOMAIN.md §3).

The one home of these formulas: the advisor's verdicts, recommendations and figures import them.
An expected wall time too large for a float is `math.inf` (the work never finishes, in practice).

All times in hours.
"""

from __future__ import annotations

import math


def erlang_b(servers: int, offered_load: float) -> float:
    """Blocking probability of M/M/c/c with `offered_load` = λ/μ Erlangs (stable recursion)."""
    if servers < 0 or offered_load < 0:
        raise ValueError("servers and offered_load must be non-negative")
    b = 1.0
    for k in range(1, servers + 1):
        b = offered_load * b / (k + offered_load * b)
    return b


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival waits in M/M/c (offered_load = λ/μ < servers)."""
    if offered_load >= servers:
        return 1.0
    b = erlang_b(servers, offered_load)
    return servers * b / (servers - offered_load * (1.0 - b))


def mmc_mean_wait(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Mean time in queue (before service) of M/M/c: C(c, a) / (cμ − λ)."""
    if arrival_rate >= servers * service_rate:
        return math.inf
    a = arrival_rate / service_rate
    return erlang_c(servers, a) / (servers * service_rate - arrival_rate)


def mmc_utilization(arrival_rate: float, service_rate: float, servers: int) -> float:
    return arrival_rate / (servers * service_rate)


def mmc_mean_in_queue(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Mean number waiting (Little's law: λ · W_q)."""
    return arrival_rate * mmc_mean_wait(arrival_rate, service_rate, servers)


def segment_wall_time(length: float, mtbf: float, restart: float) -> float:
    """Expected wall time to get through `length` hours that must run uninterrupted, restarting
    (cost `restart`, itself interruptible) after each interruption: M·e^{R/M}·(e^{L/M} − 1);
    `math.inf` where that overflows a float."""
    try:
        return mtbf * math.exp(restart / mtbf) * math.expm1(length / mtbf)
    except OverflowError:
        return math.inf


def daly_wall_time(work: float, interval: float, cost: float, restart: float, mtbf: float) -> float:
    """Daly's T_w = M·e^{R/M}·(e^{(τ+δ)/M} − 1)·T_s/τ (T_s/τ segments of τ work + δ write)."""
    return segment_wall_time(interval + cost, mtbf, restart) * work / interval


def daly_wall_time_exact(work: float, interval: float, cost: float, restart: float,
                         mtbf: float) -> float:
    """The same with a final partial segment: ⌊T_s/τ⌋ segments of τ + δ and one of r + δ,
    r = T_s − ⌊T_s/τ⌋·τ (the simulator's semantics: every segment ends with a write)."""
    full = math.floor(work / interval + 1e-9)
    rest = max(0.0, work - full * interval)
    total = full * segment_wall_time(interval + cost, mtbf, restart)
    if rest > 1e-12:
        total += segment_wall_time(rest + cost, mtbf, restart)
    return total


def no_checkpoint_wall_time(work: float, restart: float, mtbf: float) -> float:
    """Expected wall time without checkpoints: M·e^{R/M}·(e^{T_s/M} − 1)."""
    return segment_wall_time(work, mtbf, restart)


def young_interval(cost: float, mtbf: float) -> float:
    """Young's first-order optimum √(2δM)."""
    return math.sqrt(2.0 * cost * mtbf)


def daly_interval(cost: float, mtbf: float) -> float:
    """Daly's τ_opt = √(2δM)·[1 + ⅓√(δ/2M) + (δ/2M)/9] − δ for δ < 2M, else M."""
    if cost >= 2.0 * mtbf:
        return mtbf
    x = cost / (2.0 * mtbf)
    return math.sqrt(2.0 * cost * mtbf) * (1.0 + math.sqrt(x) / 3.0 + x / 9.0) - cost


# --- HTCondor's exit 85 and eviction restarts (docs/DOMAIN.md §3) ---------------------------


def _segments(work: float, interval: float) -> list[float]:
    """The useful work of each segment: whole intervals, then what is left."""
    full = math.floor(work / interval + 1e-9)
    rest = work - full * interval
    return [interval] * full + ([rest] if rest > 1e-12 else [])


def in_place_wall_time(work: float, interval: float, cost: float, restart: float, gap: float) -> float:
    """Wall time without interruptions of `work` checkpointed by exit 85 every `interval`: every
    segment ends with a write δ, and each of the n − 1 exits restarts in place after the gap g
    and the restart R (reload + transfer): T + n·δ + (n − 1)·(g + R)."""
    n = len(_segments(work, interval))
    return work + n * cost + (n - 1) * (gap + restart)


def in_place_expected_wall_time(work: float, interval: float, cost: float, restart: float,
                                gap: float, mtbf: float, delay: float = 0.0) -> float:
    """Expected wall time of the same under exponential evictions of mean M, each followed by a
    restart delay of mean D off the slot and a new start that pays R. A segment whose first
    attempt lasts a and whose retries last b takes (1 − e^{−a/M})·(M + D)·e^{b/M} on average
    (the first segment: a = τ + δ; later ones: a = g + R + τ + δ; retries: b = R + τ + δ)."""
    total = 0.0
    for i, w in enumerate(_segments(work, interval)):
        a = (gap + restart if i else 0.0) + w + cost
        b = restart + w + cost
        try:
            total += -math.expm1(-a / mtbf) * (mtbf + delay) * math.exp(b / mtbf)
        except OverflowError:
            return math.inf
    return total


def no_checkpoint_evictions(work: float, restart: float, mtbf: float) -> float:
    """Expected evictions of `work` without checkpoints (first start without R, later ones with
    it): (1 − e^{−T/M})·e^{(R+T)/M}. Each adds the restart delay to the wall time."""
    try:
        return -math.expm1(-work / mtbf) * math.exp((restart + work) / mtbf)
    except OverflowError:
        return math.inf
