"""Replications on Dask workers started as Slurm jobs (`--cluster slurm`, dask-jobqueue) give the
numbers of a local run with the same seed; the local default runs small work in this process."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from slurm_cluster import slurm_cluster_fixture  # noqa: F401 - the `slurm` fixture

from simulator.scenario import Scenario
from simulator.shipped import resolve

rep = importlib.import_module("simulator.replicate")   # the module, not the function

REPO = Path(__file__).resolve().parents[1]
WHATIF = ["whatif", "whatif_gpulab", "--vary", "pool.slots.H100.count=+16", "-r", "4", "--json"]


def advisor(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "advisor.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, "MPLBACKEND": "Agg", **(env or {})},
                          timeout=600)


def test_whatif_on_slurm_workers_equals_the_local_run(slurm, tmp_path):
    pytest.importorskip("dask_jobqueue", reason="the [slurm] extra is not installed")
    local = advisor(*WHATIF)
    assert local.returncode == 0, local.stderr[-2000:]
    r = advisor(*WHATIF, "--cluster", "slurm", "--cluster-jobs", "2", "--worker-memory", "1GiB",
                "--worker-wait", "60", env={"SLURM_CONF": str(slurm.conf)}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout) == json.loads(local.stdout)
    # The workers were Slurm jobs, now finished (cancelled by the cluster's close).
    jobs = slurm.run(["scontrol", "show", "job", "-o"], check=False).stdout
    assert "dask-worker" in jobs
    assert "JobState=RUNNING" not in jobs and "JobState=PENDING" not in jobs


def test_cluster_without_sbatch_is_a_domain_failure(tmp_path):
    pytest.importorskip("dask_jobqueue", reason="the [slurm] extra is not installed")
    env = {"PATH": str(tmp_path)}            # no sbatch on the PATH
    r = subprocess.run([sys.executable, "-m", "advisor.cli", *WHATIF, "--cluster", "slurm"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300,
                       env={**os.environ, **env, "MPLBACKEND": "Agg"})
    assert r.returncode == 1, r.stderr[-2000:]
    assert "cannot start Dask workers on slurm" in r.stderr and "Traceback" not in r.stderr


def test_cluster_and_scheduler_together_are_a_usage_error():
    r = advisor(*WHATIF, "--cluster", "slurm", "--scheduler", "tcp://127.0.0.1:1")
    assert r.returncode == 2 and "--cluster" in r.stderr


def test_small_work_with_local_workers_stays_in_this_process(monkeypatch):
    import distributed

    def no_cluster(*a, **k):
        raise AssertionError("a LocalCluster was started for work this small")

    monkeypatch.setattr(distributed, "LocalCluster", no_cluster)
    scenario = Scenario.from_yaml(resolve("scenario", "mmc"))
    inline = rep.run_replications([scenario], 3, 7, workers=0)
    assert rep.run_replications([scenario], 3, 7, workers=4) == inline


def test_work_that_outweighs_the_start_goes_to_local_workers(monkeypatch):
    import distributed

    started = []

    def no_cluster(*a, **k):
        started.append(k)
        raise RuntimeError("stop here")

    monkeypatch.setattr(distributed, "LocalCluster", no_cluster)
    monkeypatch.setattr(rep, "LOCAL_START_S", 0.0)   # any remaining work outweighs the start
    scenario = Scenario.from_yaml(resolve("scenario", "mmc"))
    with pytest.raises(RuntimeError, match="stop here"):
        rep.run_replications([scenario], 3, 7, workers=2)
    assert started and started[0]["n_workers"] == 2 and started[0]["processes"] is True
