"""The recommender assumes a save on an eviction's SIGTERM only when the program makes one and the
submit file it writes keeps it (docs/DOMAIN.md §3): then an eviction loses no work."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from advisor.recommend import recommend
from advisor.recommend.jobfiles import write_job_files
from advisor.recommend.plan import make_plan, plan_scenario
from advisor.workload import load_workload, sigterm_save, workload_from_dict
from simulator.engine import run

ROOT = Path(__file__).resolve().parents[1]
MANY = ROOT / "examples" / "workloads" / "2_many_architectures.yaml"


def workload(tmp_path: Path, script: str | None = None, **top: Any) -> Any:
    raw = {"name": "t", "kind": "training", "tasks": 4, "resumable": True, **top,
           "per_task": {"gpu_hours": 10, "gpu_memory_gb": 20, "checkpoint_gb": 1.0}}
    w = workload_from_dict(raw)
    if script is not None:
        path = tmp_path / "train.py"
        path.write_text(script)
        w = replace(w, profile_data={"script": str(path)})
    return w


HANDLER = ("import os, signal\nsignal.signal(signal.SIGTERM, lambda *a: save(os.environ["
           "'ADVISOR_CHECKPOINT_DIR']))\n")


def test_what_the_workload_says_wins(tmp_path: Path) -> None:
    assert sigterm_save(workload(tmp_path, saves_on_sigterm=True))[0] is True
    assert sigterm_save(workload(tmp_path, HANDLER, saves_on_sigterm=False))[0] is False


def test_a_profiled_script_is_read_for_a_handler(tmp_path: Path) -> None:
    saves, how = sigterm_save(workload(tmp_path, HANDLER))
    assert saves and "train.py" in how
    saves, how = sigterm_save(workload(tmp_path, "print('no handler')\n"))
    assert not saves and "no SIGTERM handler" in how
    # a handler that saves somewhere the submit file does not bring back is not a kept save
    saves, _ = sigterm_save(workload(tmp_path, "import signal\nsignal.SIGTERM\n"))
    assert not saves


def test_unknown_is_not_assumed(tmp_path: Path) -> None:
    saves, how = sigterm_save(workload(tmp_path))
    assert not saves and "saves_on_sigterm: true" in how


def _lost(saves: bool) -> tuple[float, float, Any]:
    w = replace(load_workload(MANY), saves_on_sigterm=saves, tasks=20)
    plan = make_plan(w, "chtc", replications=1)
    cand = next(c for c in plan.candidates if c.checkpoint_interval_hours and c.is_resumable
                and c.checkpoint_interval_hours >= 2)
    scenario, _ = plan_scenario(plan, cand)
    assert scenario.workload.checkpoint.saves_on_sigterm is saves
    s = run(scenario, 3).summary
    return s["lost_gpu_hours"], s["evictions_per_task"], plan


def test_a_kept_save_means_evictions_lose_no_work() -> None:
    lost_without, evictions, plan = _lost(False)
    assert evictions > 0.5 and lost_without > 0
    lost_with, _, plan_with = _lost(True)
    assert lost_with == pytest.approx(0.0, abs=1e-9)
    assert any("no work" in a for a in plan_with.assumed)
    assert any("no save on SIGTERM is assumed" in a for a in plan.assumed)


def test_the_submit_file_written_keeps_the_save_the_simulation_assumed(tmp_path: Path) -> None:
    w = replace(load_workload(MANY), saves_on_sigterm=True, tasks=20)
    rec = recommend(w, "chtc", replications=1)
    assert rec.request.checkpoints, "the use case checkpoints"
    write_job_files(rec, "chtc", tmp_path)
    text = next(tmp_path.glob("*.sub")).read_text()
    assert re.search(r"^when_to_transfer_output\s*=\s*ON_EXIT_OR_EVICT\s*$", text, re.M)
    outputs = re.search(r"^transfer_output_files\s*=\s*(.+)$", text, re.M)
    assert outputs and "checkpoints" in [p.strip() for p in outputs.group(1).split(",")]
