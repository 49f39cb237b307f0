"""Trace-driven background load: read a GPU-cluster trace, derive other users' jobs from it,
compare the trace's own utilization with a simulated replay of it.

* `load_trace(pods, nodes=None)` (`advisor.traces.read`): Alibaba's cluster-trace-gpu-v2023
  pod and node lists, or a generic CSV `submit_s,start_s,end_s,gpus[,gpu_type]`.
* `derive_background(trace)` (`advisor.traces.derive`): one background entry per GPU-count
  class with empirical inter-arrival times and durations (hours); the choices about fractional
  GPUs, censoring and the observation window are documented there.
* `trace_utilization(trace)`, `trace_pool(trace)`; `replay_comparison(trace)`
  (`advisor.traces.replay`): the replay on the trace's own pool and the difference.
* `scenario_with_trace_background(scenario, trace)`: the scenario with its background
  replaced by the trace-derived one (what `advisor whatif --background-trace` runs).
"""

from __future__ import annotations

from typing import Any

from advisor.traces.derive import (
    DEFAULT_USERS,
    DerivedBackground,
    TraceUtilization,
    derive_background,
    trace_pool,
    trace_utilization,
    window,
)
from advisor.traces.read import Trace, load_trace, read_jobs, read_nodes
from advisor.traces.replay import ReplayComparison, replay_comparison, replay_scenario
from simulator.scenario import Scenario


def scenario_with_trace_background(scenario: Scenario, trace: Trace, *,
                                   fractional: str = "weight", users: int = DEFAULT_USERS,
                                   ) -> tuple[Scenario, DerivedBackground]:
    """`scenario` with its background replaced by the trace's.

    Trace durations are wall-clock hours on the trace's GPUs; the scenario reads background work
    as hours on its `reference_gpu` (an assumption, stated in the notes). Jobs longer than the
    pool's default tier are held there, as the pool's rules say."""
    derived = derive_background(trace, fractional=fractional, users=users)
    d: dict[str, Any] = scenario.to_dict()
    d["background"] = derived.entries
    d["name"] = f"{scenario.name}+trace"
    new = Scenario.from_dict(d, source=f"{scenario.name} with background from {trace.source}")
    derived.notes.append(f"trace durations are read as hours on {new.workload.reference_gpu} "
                         "(the scenario's reference GPU); the trace does not say which GPU ran a job")
    tier = new.pool.default_tier
    if tier is not None:
        longest = max(c["max_hours"] for c in derived.classes)
        if longest > tier.max_hours:
            derived.notes.append(f"some trace jobs (up to {longest:.0f} h) are longer than the "
                                 f"pool's default tier {tier.name!r} ({tier.max_hours:g} h) and "
                                 "will be held there")
    return new, derived


__all__ = ["DerivedBackground", "ReplayComparison", "Trace", "TraceUtilization",
           "derive_background", "load_trace", "read_jobs", "read_nodes", "replay_comparison",
           "replay_scenario", "scenario_with_trace_background", "trace_pool", "trace_utilization",
           "window"]
