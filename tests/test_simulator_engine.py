"""Tiny models with exact traces: start and finish times, checkpoints, holds, limits, backfill."""

from __future__ import annotations

import pytest

from simulator import Scenario, run
from simulator.engine import EvictionCause


def one_type(count: int, workload: dict, **extra) -> Scenario:
    d = {"pool": {"name": "p", "slots": [{"gpu": "A100-SXM4-80GB", "count": count}]},
         "fair_share": "none", "workload": {"reference_gpu": "A100-SXM4-80GB", **workload}}
    d.update(extra)
    return Scenario.from_dict(d)


def test_two_gpus_three_tasks_exact_trace() -> None:
    sc = one_type(2, {"tasks": 3, "arrival": {"dist": "fixed", "value": 0.5},
                      "work_hours": {"dist": "fixed", "value": 2.0}})
    r = run(sc, 1, trace=True)
    t = r.tasks
    assert t["submit_hours"].tolist() == [0.5, 1.0, 1.5]
    assert t["first_start_hours"].tolist() == [0.5, 1.0, 2.5]
    assert t["finish_hours"].tolist() == [2.5, 3.0, 4.5]
    assert t["total_wait_hours"].tolist() == [0.0, 0.0, 1.0]
    assert t["turnaround_hours"].tolist() == [2.0, 2.0, 3.0]
    assert (t["state"] == "completed").all()
    assert (t["gpu_types"] == "A100-SXM4-80GB").all()
    assert r.trace is not None
    assert list(zip(r.trace["time_hours"], r.trace["event"], r.trace["job"], strict=True)) == [
        (0.5, "start", 0), (1.0, "start", 1), (2.5, "end", 0), (2.5, "start", 2),
        (3.0, "end", 1), (4.5, "end", 2)]
    s = r.summary
    assert s["makespan_hours"] == 4.0
    assert s["mean_wait_hours"] == pytest.approx(1 / 3)
    assert s["pool_utilization"] == pytest.approx(6.0 / (2 * 4.5))
    assert s["goodput_fraction"] == 1.0


def test_all_at_once_fifo() -> None:
    sc = one_type(2, {"tasks": 3, "work_hours": 1.5})
    t = run(sc, 1).tasks
    assert t["first_start_hours"].tolist() == [0.0, 0.0, 1.5]
    assert t["finish_hours"].tolist() == [1.5, 1.5, 3.0]


def test_periodic_checkpoint_eviction_exact() -> None:
    # evicted every 1.5 h; τ = 0.5 h, δ = 0.1 h, R = 0.2 h; 2 h of work
    sc = one_type(1, {"tasks": 1, "work_hours": 2.0, "checkpoint": {
        "interval_minutes": 30, "cost_seconds": 360, "restart_seconds": 720}},
        eviction={"time_to_eviction": {"dist": "fixed", "value": 1.5}})
    r = run(sc, 1, trace=True)
    row = r.tasks.iloc[0]
    # run 1: two segments written by 1.2 h; evicted at 1.5 h, 0.3 h of work lost
    # run 2: restart 0.2 + 1.0 h of work in two segments + 2 writes = 1.4 h → done at 2.9 h
    assert row["finish_hours"] == pytest.approx(2.9)
    assert row["evictions"] == 1 and row["starts"] == 2
    assert row["good_gpu_hours"] == pytest.approx(2.0)
    assert row["lost_gpu_hours"] == pytest.approx(0.3)
    assert row["overhead_gpu_hours"] == pytest.approx(0.2 + 0.2 + 0.2)
    assert r.trace is not None
    assert r.trace["cause"].tolist() == ["", EvictionCause.OPPORTUNISTIC.value, "", "finish"]


def test_eviction_during_a_write_loses_the_segment() -> None:
    sc = one_type(1, {"tasks": 1, "work_hours": 1.0, "checkpoint": {
        "interval_minutes": 30, "cost_seconds": 360}},
        eviction={"time_to_eviction": {"dist": "fixed", "value": 0.55}})
    # every run: the write of the first segment (0.5-0.6 h) is cut at 0.55 h: no progress ever;
    # so use a horizon and look at the accounting
    sc = sc.with_overrides({"horizon_hours": 1.2})
    row = run(sc, 1).tasks.iloc[0]
    assert row["state"] == "running"
    assert row["evictions"] == 2
    assert row["good_gpu_hours"] == 0.0
    assert row["lost_gpu_hours"] == pytest.approx(1.0)
    assert row["overhead_gpu_hours"] == pytest.approx(0.1)


def test_no_checkpoint_loses_the_whole_run() -> None:
    sc = one_type(1, {"tasks": 1, "work_hours": 2.0},
                  eviction={"time_to_eviction": {"dist": "empirical", "values": [1.0]}},
                  horizon_hours=9.5)
    row = run(sc, 1).tasks.iloc[0]
    assert row["state"] == "running" and row["evictions"] == 9
    assert row["lost_gpu_hours"] == pytest.approx(9.0)


def test_exit_driven_checkpoints_requeue() -> None:
    sc = one_type(1, {"tasks": 1, "work_hours": 2.0, "checkpoint": {
        "mode": "exit", "interval_minutes": 60, "cost_seconds": 360, "restart_seconds": 720}})
    row = run(sc, 1).tasks.iloc[0]
    # run 1: 1 h of work + 0.1 h write, exit 85 at 1.1; restart in place after the 3.5 s gap
    # (no new match, no new start): 0.2 + 1.0 + 0.1 → 2.4 + 3.5 s
    assert row["finish_hours"] == pytest.approx(2.4 + 3.5 / 3600)
    assert row["checkpoint_exits"] == 1 and row["starts"] == 1 and row["evictions"] == 0


def test_tier_limit_holds_and_loses_work_since_the_last_checkpoint() -> None:
    pool = {"name": "p", "slots": [{"gpu": "A100-SXM4-80GB", "count": 1}],
            "tiers": [{"name": "short", "max_hours": 1.0, "default": True}]}
    sc = Scenario.from_dict({"pool": pool, "workload": {"tasks": 2, "work_hours": 2.0}})
    t = run(sc, 1).tasks
    assert t["state"].tolist() == ["held", "held"]
    assert t["holds"].tolist() == [1, 1]
    assert t["first_start_hours"].tolist() == [0.0, 1.0]
    assert t["lost_gpu_hours"].tolist() == [1.0, 1.0]
    s = run(sc, 1).summary
    assert s["tasks_held"] == 2 and s["tasks_completed"] == 0
    ck = sc.with_overrides({"workload.checkpoint": {"interval_minutes": 24, "cost_seconds": 0}})
    t = run(ck, 1).tasks
    assert t["good_gpu_hours"].tolist() == pytest.approx([0.8, 0.8])
    # exit-driven checkpoints restart in place: the tier clock keeps running (held at 1 h) unless
    # the pool vacates and requeues is_resumable jobs at the limit (docs/DOMAIN.md §3)
    ex = sc.with_overrides({"workload.checkpoint": {"mode": "exit", "interval_minutes": 30}})
    assert run(ex, 1).tasks["state"].tolist() == ["held", "held"]
    vac = ex.with_overrides({"pool.limits": {"resumable_at_tier_limit": "vacate"},
                             "workload.request": {"is_resumable": True}})
    assert run(vac, 1).tasks["state"].tolist() == ["completed", "completed"]


def test_per_user_limit_caps_concurrent_gpus() -> None:
    pool = {"name": "p", "slots": [{"gpu": "A100-SXM4-80GB", "count": 4}],
            "tiers": [{"name": "t", "max_hours": 100, "per_user_gpus": 2}]}
    sc = Scenario.from_dict({"pool": pool, "workload": {"tasks": 4, "work_hours": 1.0}})
    t = run(sc, 1).tasks
    assert t["finish_hours"].tolist() == [1.0, 1.0, 2.0, 2.0]
    share = {**pool, "tiers": [{"name": "t", "max_hours": 100, "per_user_share": 0.75}]}
    t = run(Scenario.from_dict({"pool": share, "workload": {"tasks": 4, "work_hours": 1.0}}), 1).tasks
    assert t["finish_hours"].tolist() == [1.0, 1.0, 1.0, 2.0]


def test_owned_slots_take_only_resumable_jobs_and_evict_them() -> None:
    pool = {"name": "p", "slots": [
        {"gpu": "A100-SXM4-80GB", "count": 1},
        {"gpu": "A100-SXM4-80GB", "count": 2, "owner": "lab", "label": "owned",
         "eviction": {"time_to_eviction": {"dist": "fixed", "value": 0.5}}}]}
    plain = Scenario.from_dict({"pool": pool, "workload": {"tasks": 3, "work_hours": 1.0}})
    r = run(plain, 1, trace=True)
    assert r.trace is not None
    assert set(r.trace["slot_label"]) == {"A100-SXM4-80GB"}
    assert r.tasks["finish_hours"].tolist() == [1.0, 2.0, 3.0]
    resumable = plain.with_overrides({"workload.request": {"is_resumable": True},
                                      "workload.checkpoint": {"interval_minutes": 15}})
    r = run(resumable, 1, trace=True)
    assert r.trace is not None
    ends = r.trace[r.trace["event"] == "end"]
    assert EvictionCause.OWNER_RETURNED.value in set(ends["cause"])
    assert set(ends[ends["slot_label"] == "A100-SXM4-80GB"]["cause"]) == {"finish"}
    assert (r.tasks["state"] == "completed").all()
    assert r.tasks["evictions"].sum() > 0


def test_faster_gpu_preferred_and_work_scaled() -> None:
    pool = {"name": "p", "slots": [{"gpu": "A100-SXM4-80GB", "count": 1},
                                   {"gpu": "H100-SXM5-80GB", "count": 1}]}
    sc = Scenario.from_dict({"pool": pool, "workload": {
        "tasks": 2, "work_hours": 2.0, "reference_gpu": "A100-SXM4-80GB",
        "speed": {"H100-SXM5-80GB": 2.0}}})
    t = run(sc, 1).tasks
    assert t["gpu_types"].tolist() == ["H100-SXM5-80GB", "A100-SXM4-80GB"]
    assert t["finish_hours"].tolist() == [1.0, 2.0]
    assert t["good_gpu_hours"].tolist() == [1.0, 2.0]


def test_capability_and_memory_requests_are_respected() -> None:
    pool = {"name": "p", "slots": [{"gpu": "RTX-2080-Ti", "count": 4},
                                   {"gpu": "A100-SXM4-80GB", "count": 1}]}
    sc = Scenario.from_dict({"pool": pool, "workload": {"tasks": 3, "work_hours": 1.0,
                                                        "request": {"gpu_memory_gb": 20}}})
    t = run(sc, 1).tasks
    assert (t["gpu_types"] == "A100-SXM4-80GB").all()
    assert t["finish_hours"].tolist() == [1.0, 2.0, 3.0]


def test_cpu_slots_for_cpu_capable_tasks() -> None:
    pool = {"name": "p", "slots": [{"gpu": "A100-SXM4-80GB", "count": 1}],
            "cpu_slots": {"count": 4, "memory_gb": 4}}
    sc = Scenario.from_dict({"pool": pool, "workload": {
        "tasks": 3, "work_hours": 1.0, "request": {"cpu_ok": True, "cpu_hours": 4.0, "cpus": 2,
                                                   "memory_gb": 6}}})
    r = run(sc, 1)
    t = r.tasks
    assert t["gpu_types"].tolist() == ["A100-SXM4-80GB", "CPU", "CPU"]
    assert t["finish_hours"].tolist() == [1.0, 2.0, 2.0]  # 4 core-hours on 2 cores
    assert t["cpu_core_hours"].tolist() == [0.0, 4.0, 4.0]
    assert r.summary["cpu_utilization"] == pytest.approx(8.0 / (4 * 2.0))


def test_fair_share_favours_the_light_user() -> None:
    base = {"pool": {"name": "p", "slots": [{"gpu": "A100-SXM4-80GB", "count": 4}]},
            "workload": {"tasks": 20, "start_hours": 50, "work_hours": 1.0,
                         "arrival": {"dist": "exponential", "mean": 0.5}},
            "background": {"users": 1, "arrival": {"dist": "exponential", "mean": 0.2},
                           "work_hours": {"dist": "exponential", "mean": 1.0}}}
    fair = run(Scenario.from_dict(base), 4).summary["mean_wait_hours"]
    fifo = run(Scenario.from_dict({**base, "fair_share": "none"}), 4).summary["mean_wait_hours"]
    assert fair < 0.5 * fifo


def test_background_jobs_use_the_pool() -> None:
    sc = Scenario.from_dict({
        "pool": "chtc", "warmup_hours": 24, "seed": 2,
        "workload": {"tasks": 20, "start_hours": 24, "work_hours": 2.0},
        "background": {"users": 10, "arrival": {"dist": "exponential", "mean": 0.05},
                       "work_hours": {"dist": "lognormal", "mean": 6, "cv": 1}}})
    s = run(sc).summary
    assert s["background_jobs"] > 100
    assert s["tasks_completed"] == 20
    assert 0.0 < s["pool_utilization"] < 1.0
    assert s["utilization_by_gpu"]["RTX-A6000"] == 0.0  # owned, nobody resumable


def test_too_many_interruptions_get_the_job_held() -> None:
    pool = {"name": "p", "slots": [{"gpu": "A100-SXM4-80GB", "count": 1}],
            "limits": {"max_starts_without_finishing": 30}}
    sc = Scenario.from_dict({"pool": pool, "workload": {"tasks": 1, "work_hours": 5.0},
                             "eviction": {"time_to_eviction": {"dist": "fixed", "value": 1.0}}})
    row = run(sc, 1).tasks.iloc[0]
    assert row["state"] == "held" and row["evictions"] == 30 and row["holds"] == 1
    assert row["finish_hours"] != row["finish_hours"]  # NaN


def test_returning_owner_keeps_the_gpu_for_a_while() -> None:
    pool = {"name": "p", "slots": [{"gpu": "A100-SXM4-80GB", "count": 1, "owner": "lab",
                                    "eviction": {"time_to_eviction": {"dist": "fixed", "value": 1.0}}}]}
    base = {"pool": pool, "workload": {"tasks": 1, "work_hours": 1.5, "request": {"is_resumable": True},
                                       "checkpoint": {"interval_minutes": 30}}}
    row = run(Scenario.from_dict(base), 1).tasks.iloc[0]
    assert row["finish_hours"] == pytest.approx(1.5)  # back at once, 0.5 h left
    busy = run(Scenario.from_dict({**base, "owner_busy_hours": 2.0}), 1, trace=True)
    row = busy.tasks.iloc[0]
    assert row["finish_hours"] == pytest.approx(3.5)  # evicted at 1.0, owner until 3.0
    assert row["total_wait_hours"] == pytest.approx(2.0)


def test_backfill_on_owned_gpus_does_not_count_against_the_per_user_limit() -> None:
    pool = {"name": "p", "slots": [{"gpu": "A100-SXM4-80GB", "count": 4},
                                   {"gpu": "A100-SXM4-80GB", "count": 4, "owner": "lab",
                                    "label": "owned"}],
            "tiers": [{"name": "t", "max_hours": 100, "per_user_gpus": 2}]}
    sc = Scenario.from_dict({"pool": pool, "workload": {"tasks": 8, "work_hours": 1.0,
                                                        "request": {"is_resumable": True}}})
    t = run(sc, 1).tasks
    assert t["finish_hours"].tolist() == [1.0] * 6 + [2.0] * 2  # 2 shared + 4 owned at once


def test_warmup_and_horizon_windows() -> None:
    sc = one_type(1, {"tasks": 10, "arrival": {"dist": "fixed", "value": 1.0}, "work_hours": 0.5},
                  warmup_hours=2.5, horizon_hours=6.2)
    s = run(sc).summary
    # submitted at 1, 2, ..., 6 before the horizon; counted from 2.5: tasks at 3, 4, 5, 6
    assert (s["tasks"], s["tasks_completed"], s["tasks_running"], s["tasks_not_submitted"]) == (4, 3, 1, 4)
    assert s["window_hours"] == pytest.approx(3.7)
    assert s["pool_utilization"] == pytest.approx(1.7 / 3.7)
    assert s["makespan_hours"] == pytest.approx(5.5 - 3.0)
