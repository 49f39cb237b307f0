"""Contention: a profile taken while other processes keep every CPU busy either matches a quiet
profile within 25% (CPU-time figures) or says that it was disturbed; the recommendation from a
disturbed profile says so."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from profiler_fixtures import profile_memory_model

from advisor.profiler._procstat import Reading, classify

BURN = ("import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end:\n"
        "    sum(i * i for i in range(10000))\n")


def test_classify_flags_other_processes_on_our_cpus():
    start = Reading(main_cpu_s=0.0, workers_cpu_s=0.0, machine_busy_s=0.0, loadavg=0.1)
    quiet = classify(start, Reading(1.9, 0.0, 2.0, 0.2), wall_s=1.0, cpus=2, wanted_cores=2)
    assert quiet["disturbed"] is False and quiet["other_load_cores"] == pytest.approx(0.1)
    busy = classify(start, Reading(0.9, 0.0, 2.0, 2.5), wall_s=1.0, cpus=2, wanted_cores=2)
    assert busy["disturbed"] is True and busy["other_load_cores"] == pytest.approx(1.1)
    assert "1.10 of this machine's 2 CPUs" in busy["reason"]
    # a single-threaded script on a 2-core machine leaves room for one other process
    alone = classify(start, Reading(1.0, 0.0, 2.0, 1.0), wall_s=1.0, cpus=2, wanted_cores=1)
    assert alone["disturbed"] is False


@pytest.fixture(scope="module")
def busy_profile(tmp_path_factory):
    burners = [subprocess.Popen([sys.executable, "-c", BURN.format(s=90)])
               for _ in range(len(os.sched_getaffinity(0)))]
    try:
        return profile_memory_model("mlp", tmp_path_factory.mktemp("busy"), steps=5, warmup=2)
    finally:
        for b in burners:
            b.kill()
            b.wait()


def test_busy_profile_matches_quiet_or_says_disturbed(busy_profile, memory_profiles):
    quiet = memory_profiles["mlp"]  # the same script, profiled once per session
    c = busy_profile["contention"]
    assert c["other_load_cores"] is not None
    if not c["disturbed"]:
        busy_s = busy_profile["step_time_s"]["median"]
        quiet_s = quiet["step_time_s"]["median"]
        assert abs(busy_s - quiet_s) / quiet_s < 0.25
    else:
        assert c["other_load_cores"] >= 0.5
        assert any("disturbed" in w for w in busy_profile["warnings"])


def test_disturbed_profile_recommendation_says_so(busy_profile, tmp_path):
    if not busy_profile["contention"]["disturbed"]:
        pytest.skip("the burners did not disturb this measurement")
    from advisor.predict import predict_fit
    from advisor.profiler import write_profile
    from advisor.recommend import recommend
    from advisor.workload import load_workload_or_profile
    from simulator.pool import load_pool
    path = write_profile(busy_profile, tmp_path / "busy.json")
    assert any("busy machine" in a for a in predict_fit(busy_profile, load_pool("chtc")).assumptions)
    rec = recommend(load_workload_or_profile(path, steps=200), "chtc", replications=1)
    assert any("busy machine" in a for a in rec.assumed)
