"""The engine's typed per-job state and the matchmaker's choice of the next job.

`Matchmaker.select` decides, per kind of job, where the queues of that kind would fit instead of
asking `fits` for every queue; a hypothesis test holds it to the plain definition (the lowest
(fair-share usage, head submission number) among the queues whose head `fits` now) on random
states: free units, per-user tier use and limits, shared/owned/CPU choices, fair share or none.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import Scenario, run
from simulator.jobs import Jobs, RunEnd, State, Tasks
from simulator.matchmaking import FairShare, JobKind, JobQueue, Matchmaker, SlotInfo


def test_job_columns_are_typed_and_grow_for_background_jobs() -> None:
    jobs = Jobs.allocate(np.array([1.5, 2.5]))
    assert len(jobs) == 2
    assert jobs.work.typecode == "d" and jobs.work.tolist() == [1.5, 2.5]
    assert jobs.seq.typecode == "q" and jobs.queue.typecode == "i"
    assert jobs.append(queue=3, work=4.0, now=7.0) == 2
    assert (jobs.queue[2], jobs.work[2], jobs.enqueued[2], jobs.progress[2]) == (3, 4.0, 7.0, 0.0)
    assert len({len(getattr(jobs, name)) for name in Jobs.__slots__}) == 1


def test_task_columns_start_pending_and_share_memory_with_numpy() -> None:
    tasks = Tasks.allocate(3)
    assert tasks.state.tolist() == [State.PENDING] * 3
    assert np.isnan(tasks.column("submit")).all()
    starts = tasks.column("starts")
    assert starts.dtype == np.int64
    tasks.starts[1] = 4
    assert starts.tolist() == [0, 4, 0]  # a view, not a copy
    assert Tasks.allocate(0).column("good").shape == (0,)
    assert [s.label for s in State] == ["pending", "waiting", "running", "completed", "held"]
    assert [e.name for e in RunEnd] == ["FINISH", "EXIT", "EVICT", "HOLD", "VACATE"]


def test_result_columns_keep_their_types() -> None:
    sc = Scenario.from_dict({"pool": {"name": "p", "slots": [{"gpu": "A100-SXM4-80GB", "count": 1}]},
                             "workload": {"tasks": 3, "work_hours": 1.0}})
    t = run(sc, 1).tasks
    for name in ("task", "evictions", "holds", "checkpoint_exits", "starts"):
        assert t[name].dtype == np.int64, name
    for name in ("submit_hours", "finish_hours", "total_wait_hours", "work_hours", "good_gpu_hours"):
        assert t[name].dtype == np.float64, name
    assert t["state"].tolist() == ["completed"] * 3
    assert t["gpu_types"].tolist() == ["A100-SXM4-80GB"] * 3


def test_an_error_inside_a_callback_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    sc = Scenario.from_dict({"pool": {"name": "p", "slots": [{"gpu": "A100-SXM4-80GB", "count": 1}]},
                             "eviction": {"time_to_eviction": {"dist": "fixed", "value": 0.5}},
                             "workload": {"tasks": 2, "work_hours": 1.0,
                                          "checkpoint": {"interval_minutes": 10}}})

    def broken(*_args: Any) -> tuple[float, float, float]:
        raise RuntimeError("broken split")

    monkeypatch.setattr(JobKind, "split", broken)
    with pytest.raises(RuntimeError, match="broken split"):
        run(sc, 1)


def test_a_run_with_nothing_left_to_happen_ends_there(monkeypatch: pytest.MonkeyPatch) -> None:
    # no job can ever start: once the arrivals are over the schedule is empty; the run ends at
    # the last arrival and reports every task waiting
    monkeypatch.setattr(Matchmaker, "fits", lambda self, q: -1)
    monkeypatch.setattr(Matchmaker, "select", lambda self, now: None)
    sc = Scenario.from_dict({"pool": {"name": "p", "slots": [{"gpu": "A100-SXM4-80GB", "count": 1}]},
                             "workload": {"tasks": 3, "work_hours": 1.0,
                                          "arrival": {"dist": "fixed", "value": 2.0}}})
    r = run(sc, 1)
    assert r.tasks["state"].tolist() == ["waiting"] * 3
    assert r.tasks["total_wait_hours"].tolist() == [4.0, 2.0, 0.0]
    assert r.summary["window_hours"] == 6.0


# --- select against its definition ---------------------------------------------------------

def reference_select(mm: Matchmaker, queues: list[JobQueue], now: float) -> tuple[JobQueue, int] | None:
    best = None
    for q in queues:
        if not q.heap:
            continue
        slot = mm.fits(q)
        if slot < 0:
            continue
        key = (mm.fair.usage(q.user, now) if mm.fair else 0.0, q.heap[0])
        if best is None or key < best[0]:
            best = (key, q, slot)
    return None if best is None else (best[1], best[2])


@st.composite
def matchmaker_states(draw: Any) -> tuple[Matchmaker, list[JobQueue], float]:
    n_slots = draw(st.integers(1, 4))
    counts = [draw(st.integers(1, 6)) for _ in range(n_slots)]
    slots = [SlotInfo(f"s{i}", "A100-SXM4-80GB", c, False, False, None, None)
             for i, c in enumerate(counts)]
    kinds = []
    for _ in range(draw(st.integers(1, 3))):
        gpus = draw(st.integers(1, 3))
        order = draw(st.permutations(range(n_slots)))
        choices = []
        for slot in order[:draw(st.integers(1, n_slots))]:
            usage = draw(st.sampled_from([0, 1, 2]))
            choices.append((slot, gpus if usage == 2 else draw(st.integers(1, 4)), usage))
        kinds.append(SimpleNamespace(choice_units=choices, gpus=gpus, tier=draw(st.integers(0, 1)),
                                     limit=draw(st.one_of(st.none(), st.integers(0, 6)))))
    users = draw(st.integers(1, 4))
    fair = draw(st.booleans())
    mm = Matchmaker(slots, users, 2, 24.0 if fair else None, kinds)  # type: ignore[arg-type]
    mm.free = [draw(st.integers(0, c)) for c in counts]
    mm.tier_use = [[draw(st.integers(0, 6)) for _ in range(2)] for _ in range(users)]
    if isinstance(mm.fair, FairShare):
        for u in range(users):  # few distinct values: ties in usage happen
            mm.fair.value[u] = draw(st.sampled_from([0.0, 1.0, 5.0]))
            mm.fair.since[u] = draw(st.sampled_from([0.0, 2.0]))
            mm.fair.in_use[u] = draw(st.integers(0, 3))
    seqs = iter(draw(st.permutations(range(40))))
    queues = []
    for user in range(users):
        for k, kind in enumerate(kinds):
            if draw(st.booleans()):
                q = JobQueue(user, k, kind.tier)
                queues.append(q)
                for _ in range(draw(st.integers(1, 3))):
                    mm.push(q, next(seqs))
    mm.job_of_seq.extend(range(40))
    return mm, queues, draw(st.sampled_from([2.0, 5.0]))


@settings(max_examples=300, deadline=None)
@given(matchmaker_states())
def test_select_is_the_lowest_key_among_queues_that_fit(state: tuple) -> None:
    mm, queues, now = state
    assert mm.active == sum(1 for q in queues if q.heap)
    assert mm.select(now) == reference_select(mm, queues, now)
    # taking the chosen head keeps the two in step
    while (pick := mm.select(now)) is not None:
        q, slot = pick
        assert pick == reference_select(mm, queues, now)
        mm.pop(q)
        units = next(u for s, u, _ in mm.kinds[q.kind][0] if s == slot)
        usage = next(g for s, _, g in mm.kinds[q.kind][0] if s == slot)
        mm.take(q, slot, units, usage, now)
    assert reference_select(mm, queues, now) is None
