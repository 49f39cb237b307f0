"""The consultation page's figures: matplotlib, rendered to SVG and embedded as data URIs.

Each function takes plain numbers (no advisor objects), draws one figure with labelled axes
(units in the labels) and a title, and returns a `Figure`: the `<img>`-ready data URI plus the
alt text. SVG keeps the figures sharp when zoomed or printed; embedding each one as an image
(rather than inline `<svg>`) keeps matplotlib's element ids from colliding between figures.
Nothing is written to disk and no global matplotlib state leaks out (`rc_context`).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure as MplFigure  # noqa: E402

from simulator.theory import (  # noqa: E402
    daly_wall_time,
    in_place_expected_wall_time,
    no_checkpoint_wall_time,
)

# One palette for the whole page (colour-blind safe: Okabe-Ito).
BLUE = "#0072B2"
ORANGE = "#E69F00"
GREEN = "#009E73"
RED = "#D55E00"
GREY = "#6b7280"
LIGHT = "#dbeafe"

RC: Any = {  # a dict of rcParams (typed Any: matplotlib types the keys as literals)
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 11.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e5e7eb",
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "svg.fonttype": "path",          # text as outlines: identical in every browser, no fonts needed
    "svg.hashsalt": "advisor-report",  # stable ids: the same inputs give the same bytes
}


@dataclass(frozen=True)
class Figure:
    """A rendered figure: a data URI for `<img src>` and the alt text that describes it."""

    uri: str
    alt: str
    title: str


def _render(fig: MplFigure, alt: str, title: str) -> Figure:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    data = base64.b64encode(buf.getvalue().encode()).decode("ascii")
    return Figure(uri=f"data:image/svg+xml;base64,{data}", alt=alt, title=title)


def time_unit(hours: float) -> tuple[str, float]:
    """The unit an axis spanning up to `hours` is labelled in, and hours per unit: minutes under
    two hours, hours under three days, days beyond."""
    if hours < 2:
        return "min", 1 / 60
    return ("days", 24.0) if hours >= 72 else ("h", 1.0)


def time_to_results(values_hours: Sequence[float], *, expected_mean_hours: float | None,
                    label: str, held_runs: int = 0) -> Figure:
    """Histogram and empirical CDF of the time-to-results of the chosen request's replications."""
    x = np.asarray([v for v in values_hours if math.isfinite(v)], dtype=float)
    if len(x) == 0:
        raise ValueError("no finite time-to-results values to plot")
    unit, div = time_unit(float(np.max(x)))
    xs = x / div
    mean, p90 = float(np.mean(xs)), float(np.percentile(xs, 90))
    title = "Simulated time to results"
    with plt.rc_context(RC):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.6, 3.6), constrained_layout=True)
        bins = min(12, max(5, int(math.sqrt(len(xs)) * 2)))
        lo, hi = float(xs.min()), float(xs.max())
        if hi - lo < 1e-9:
            lo, hi = lo * 0.95, hi * 1.05 + 1e-9
        ax1.hist(xs, bins=np.linspace(lo, hi, bins + 1), color=BLUE, alpha=0.85,
                 edgecolor="white", linewidth=0.8)
        ax1.axvline(mean, color=RED, linewidth=2, label=f"mean {mean:.3g} {unit}")
        ax1.axvline(p90, color=ORANGE, linewidth=2, linestyle="--", label=f"90th percentile {p90:.3g} {unit}")
        ax1.set_xlabel(f"time from submission to the last job's result ({unit})")
        ax1.set_ylabel("replications (count)")
        ax1.set_title("Distribution over replications")
        ax1.yaxis.get_major_locator().set_params(integer=True)
        counts, _ = np.histogram(xs, bins=np.linspace(lo, hi, bins + 1))
        ax1.set_ylim(0, max(counts) * 1.45 + 0.5)
        ax1.legend(loc="upper left", ncol=1)
        srt = np.sort(xs)
        ecdf = np.arange(1, len(srt) + 1) / len(srt)
        ax2.step(np.concatenate([[srt[0]], srt]), np.concatenate([[0.0], ecdf]), where="post",
                 color=BLUE, linewidth=2, label="simulated runs")
        ax2.plot(srt, ecdf, "o", color=BLUE, markersize=3.5)
        if expected_mean_hours is not None and math.isfinite(expected_mean_hours):
            ax2.axvline(expected_mean_hours / div, color=GREY, linewidth=1.2, linestyle=":",
                        label=f"estimate the request was chosen by {expected_mean_hours / div:.3g} {unit}")
        ax2.axhline(0.9, color=ORANGE, linewidth=1, linestyle="--")
        ax2.set_xlabel(f"time to results ({unit})")
        ax2.set_ylabel("fraction of runs finished (ECDF)")
        ax2.set_title("Chance of having all results by a given time")
        ax2.set_ylim(0, 1.3)
        ax2.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
        ax2.text(1.0, 0.9, " 90%", transform=ax2.get_yaxis_transform(), ha="left", va="center",
                 fontsize=8.5, color=ORANGE)
        ax2.legend(loc="upper left")
        fig.suptitle(f"{title}: {label}", fontsize=12, fontweight="bold")
        note = f"{len(xs)} replications"
        if held_runs:
            note += f"; {held_runs} more had jobs held at the tier limit (not shown)"
        fig.text(0.995, -0.02, note, ha="right", va="top", fontsize=8.5, color=GREY)
    alt = (f"Histogram and ECDF of the simulated time to results over {len(xs)} replications: "
           f"mean {mean:.3g} {unit}, 90th percentile {p90:.3g} {unit}.")
    return _render(fig, alt, title)


@dataclass(frozen=True)
class SimulatedPoint:
    interval_hours: float
    mean_hours: float
    ci95_low: float
    ci95_high: float


@dataclass(frozen=True)
class CurvePoint:
    """One interval of the recommendation's simulated interval curve: the campaign's time to
    results (mean and 95% CI) with that interval; `chosen` marks the recommended one."""

    interval_hours: float
    mean_hours: float
    ci95_low: float
    ci95_high: float
    chosen: bool = False


def in_place_optimum(work: float, cost: float, restart: float, gap: float, mtbf: float,
                     delay: float = 0.0) -> float:
    """The interval (hours) minimising `in_place_expected_wall_time`, on a fine log grid from
    30 s to the whole work."""
    taus = np.geomspace(1 / 120, max(work, 2 / 60), 600)
    walls = [in_place_expected_wall_time(work, t, cost, restart, gap, mtbf, delay) for t in taus]
    return float(taus[int(np.nanargmin(walls))])


def _interval_axis(ax: Any, lo: float, hi: float) -> None:
    """A log axis of checkpoint intervals in minutes, ticked at round values."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    ax.set_xscale("log")
    ticks = [t for t in (1, 2, 5, 10, 15, 30, 60, 120, 180, 300, 600, 1200, 2400, 4800)
             if lo * 60 <= t <= hi * 60]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticklabels([str(t) for t in ticks])
    ax.set_xlim(lo * 60, hi * 60)


def checkpoint_curve(*, work_hours: float, mtte_hours: float, cost_hours: float,
                     restart_hours: float, chosen_interval_hours: float | None,
                     daly_interval_hours: float, guidance_hours: tuple[float, float] | None,
                     simulated: Sequence[SimulatedPoint] = (), hypothetical: bool = False,
                     gap_hours: float = 0.0, delay_hours: float = 0.0,
                     interval_curve: Sequence[CurvePoint] = ()) -> Figure:
    """Expected wall time of one job against the checkpoint interval τ: Daly's T_w(τ) and the
    exit-85 checkpoints the submit file uses (each restarting in place after the gap, each
    eviction followed by the restart delay), the chosen τ and the optima marked, simulated points
    if given; beside it, when given, the recommendation's simulated interval curve (the
    campaign's time to results against τ, with its 95% CI)."""
    lo = max(2 / 60, daly_interval_hours / 8)
    hi = max(10.0, daly_interval_hours * 8, (chosen_interval_hours or 0) * 2)
    hi = min(hi, max(work_hours, lo * 4))
    taus = np.geomspace(lo, hi, 300)

    def in_place(t: float) -> float:
        return in_place_expected_wall_time(work_hours, t, cost_hours, restart_hours, gap_hours,
                                           mtte_hours, delay_hours)

    tw = np.array([daly_wall_time(work_hours, t, cost_hours, restart_hours, mtte_hours) for t in taus])
    te = np.array([in_place(t) for t in taus])
    best = daly_wall_time(work_hours, daly_interval_hours, cost_hours, restart_hours, mtte_hours)
    exit_tau = in_place_optimum(work_hours, cost_hours, restart_hours, gap_hours, mtte_hours, delay_hours)
    exit_best = in_place(exit_tau)
    curve = [p for p in interval_curve if p.interval_hours > 0 and math.isfinite(p.mean_hours)]
    title = "Expected wall time against checkpoint interval"
    with plt.rc_context(RC):
        if len(curve) > 1:
            fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12.8, 4.6), constrained_layout=True,
                                          gridspec_kw={"width_ratios": [3, 2]})
        else:
            fig, ax = plt.subplots(figsize=(9.6, 4.3), constrained_layout=True)
            ax2 = None
        if guidance_hours is not None and guidance_hours[0] < hi and guidance_hours[1] > lo:
            ax.axvspan(guidance_hours[0] * 60, guidance_hours[1] * 60, color=GREEN, alpha=0.08,
                       label=f"pool guidance {guidance_hours[0]:g}–{guidance_hours[1]:g} h")
        ax.plot(taus * 60, tw, color=BLUE, linewidth=2.2,
                label="Daly's $T_w(\\tau)$: checkpoints in the running program, restart only after an eviction")
        ax.plot(taus * 60, te, color=BLUE, linewidth=1.6, linestyle="--",
                label="exit 85 (checkpoint_exit_code): in-place restart after each checkpoint")
        ax.axhline(work_hours, color=GREY, linewidth=1, linestyle=":",
                   label=f"the work itself, no evictions ({work_hours:.3g} h)")
        ax.plot([daly_interval_hours * 60], [best], marker="D", color=GREEN, markersize=8,
                linestyle="none", label=f"Daly's optimum τ = {daly_interval_hours * 60:.0f} min")
        ax.plot([exit_tau * 60], [exit_best], marker="D", color=GREEN, markersize=8, markerfacecolor="white",
                markeredgewidth=2, linestyle="none", label=f"exit-85 optimum τ ≈ {exit_tau * 60:.0f} min")
        tops = [max(best, exit_best) * 1.5]
        if chosen_interval_hours is not None:
            t_c = in_place(chosen_interval_hours)
            ax.axvline(chosen_interval_hours * 60, color=RED, linewidth=1.6, linestyle="--")
            ax.plot([chosen_interval_hours * 60], [t_c], marker="o", color=RED, markersize=9,
                    linestyle="none", label=f"recommended τ = {chosen_interval_hours * 60:.0f} min "
                    f"({t_c:.3g} h expected)")
            tops.append(t_c * 1.05)
        if simulated:
            xs = np.array([p.interval_hours * 60 for p in simulated])
            ys = np.array([p.mean_hours for p in simulated])
            lows = np.array([p.ci95_low if math.isfinite(p.ci95_low) else p.mean_hours for p in simulated])
            highs = np.array([p.ci95_high if math.isfinite(p.ci95_high) else p.mean_hours for p in simulated])
            ax.errorbar(xs, ys, yerr=[np.maximum(0, ys - lows), np.maximum(0, highs - ys)], fmt="s",
                        color=ORANGE, markersize=5, capsize=3,
                        label="simulated, exit 85 (mean and 95% CI)")
            tops.append(float(np.max(highs)) * 1.03)
        _interval_axis(ax, lo, hi)
        finite = np.concatenate([tw[np.isfinite(tw)], te[np.isfinite(te)]])
        top = min(float(np.max(finite)) if len(finite) else tops[0], max(tops))
        top = max(top, *tops[1:]) if len(tops) > 1 else top
        ax.set_ylim(work_hours * 0.98, top)
        ax.set_xlabel("checkpoint interval τ: work between checkpoints (min, log scale; 60 min = 1 h)")
        ax.set_ylabel("expected wall time of one job (h)")
        what = "if run as backfill" if hypothetical else "on the GPUs it may use"
        ax.set_title(f"{title}\n({what}: mean time to eviction {mtte_hours:g} h, "
                     f"checkpoint {cost_hours * 3600:.0f} s, restart {restart_hours * 3600:.0f} s)")
        never = no_checkpoint_wall_time(work_hours, restart_hours, mtte_hours)
        ax.plot([], [], " ", label="without checkpoints: " + (
            f"{never:.3g} h expected" if never < 1e4 else
            (f"{never:,.0f} h expected: never, in practice" if math.isfinite(never) and never < 1e12
             else "never finishes")))
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2)
        if ax2 is not None:
            _interval_curve_axes(ax2, curve, guidance_hours)
    alt = (f"Expected wall time of a {work_hours:.3g} h job against the checkpoint interval; "
           f"Daly's optimum {daly_interval_hours * 60:.0f} min, exit-85 optimum {exit_tau * 60:.0f} min"
           + (f", recommended {chosen_interval_hours * 60:.0f} min" if chosen_interval_hours else "")
           + (f"; simulated time to results at {len(curve)} intervals, "
              + ", ".join(f"{p.interval_hours * 60:.0f} min: {p.mean_hours:.3g} h" for p in curve)
              if len(curve) > 1 else "") + ".")
    return _render(fig, alt, title)


def _interval_curve_axes(ax: Any, curve: Sequence[CurvePoint],
                         guidance_hours: tuple[float, float] | None) -> None:
    """The campaign's simulated time to results against the checkpoint interval, 95% CI."""
    xs = np.array([p.interval_hours for p in curve])
    lo, hi = float(xs.min()) / 1.5, float(xs.max()) * 1.5
    unit, div = time_unit(max(p.ci95_high if math.isfinite(p.ci95_high) else p.mean_hours for p in curve))
    ys = np.array([p.mean_hours for p in curve]) / div
    lows = np.array([p.ci95_low if math.isfinite(p.ci95_low) else p.mean_hours for p in curve]) / div
    highs = np.array([p.ci95_high if math.isfinite(p.ci95_high) else p.mean_hours for p in curve]) / div
    if guidance_hours is not None and guidance_hours[0] < hi and guidance_hours[1] > lo:
        ax.axvspan(guidance_hours[0] * 60, guidance_hours[1] * 60, color=GREEN, alpha=0.08,
                   label=f"pool guidance {guidance_hours[0]:g}–{guidance_hours[1]:g} h")
    ax.fill_between(xs * 60, lows, highs, color=LIGHT, alpha=0.9, label="95% CI of the mean")
    ax.plot(xs * 60, ys, "o-", color=BLUE, linewidth=1.8, markersize=5, label="simulated mean")
    for p, y in zip(curve, ys, strict=True):
        if p.chosen:
            ax.plot([p.interval_hours * 60], [y], marker="o", color=RED, markersize=9, linestyle="none",
                    label=f"recommended τ = {p.interval_hours * 60:.0f} min")
    _interval_axis(ax, lo, hi)
    ax.set_xlabel("checkpoint interval τ (min, log scale)")
    ax.set_ylabel(f"campaign's time to results ({unit})")
    ax.set_title("Simulated time to results against τ\n(the recommended request, common random numbers)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2)


@dataclass(frozen=True)
class Bar:
    label: str
    mean_hours: float
    ci95_low: float
    ci95_high: float
    p90_hours: float
    highlight: bool = False


def compare_bars(bars: Sequence[Bar], *, title: str, subtitle: str = "") -> Figure:
    """Horizontal bars of mean time-to-results (95% CI whiskers, p90 tick) per variant."""
    finite = [b for b in bars if math.isfinite(b.mean_hours)]
    if not finite:
        raise ValueError("no finite variant to plot")
    unit, div = time_unit(max(b.p90_hours if math.isfinite(b.p90_hours) else b.mean_hours
                              for b in finite))
    with plt.rc_context(RC):
        height = 1.1 + 0.42 * len(finite)
        fig, ax = plt.subplots(figsize=(9.6, height), constrained_layout=True)
        ys = np.arange(len(finite))[::-1]
        colors = [RED if b.highlight else BLUE for b in finite]
        means = np.array([b.mean_hours for b in finite]) / div
        ax.barh(ys, means, color=colors, alpha=0.85, height=0.62)
        lows = np.array([b.ci95_low if math.isfinite(b.ci95_low) else b.mean_hours for b in finite]) / div
        highs = np.array([b.ci95_high if math.isfinite(b.ci95_high) else b.mean_hours for b in finite]) / div
        ax.errorbar(means, ys, xerr=[np.maximum(0, means - lows), np.maximum(0, highs - means)],
                    fmt="none", ecolor="#111827", capsize=3, linewidth=1)
        p90 = np.array([b.p90_hours for b in finite]) / div
        ax.plot(p90, ys, "|", color=ORANGE, markersize=14, markeredgewidth=2.5)
        ax.set_yticks(ys)
        ax.set_yticklabels([b.label for b in finite])
        for lab, b in zip(ax.get_yticklabels(), finite, strict=True):
            if b.highlight:
                lab.set_fontweight("bold")
        ax.set_xlabel(f"time to results ({unit}): bar = mean, whisker = 95% CI, orange tick = 90th percentile")
        ax.set_xlim(0, max(float(np.nanmax(highs)), float(np.nanmax(p90))) * 1.12)
        ax.grid(axis="y", visible=False)
        ax.set_ylabel("request variant")
        ax.set_title(title + (f"\n{subtitle}" if subtitle else ""))
        for y, m in zip(ys, means, strict=True):
            ax.text(m, y + 0.36, f" {m:.3g} {unit}", va="center", ha="left", fontsize=8.5, color="#111827")
    alt = "; ".join(f"{b.label}: mean {b.mean_hours / div:.3g} {unit}" for b in finite)
    return _render(fig, alt, title)
