"""Simulations scaled out on a batch system: `--cluster slurm|htcondor` starts a dask-jobqueue
cluster (SLURMCluster, HTCondorCluster) whose workers are batch jobs with the stated
per-worker resources, and the replications run there through its scheduler's address (the
same path as `--scheduler ADDRESS`; results are identical to a local run with the same seed).

    with batch_cluster(args) as address:      # None without --cluster
        replicate(scenario, ..., scheduler=address)

The worker jobs run this interpreter (sys.executable), so the submit host and the execute
nodes need the same Python environment (a shared file system, as on most Slurm clusters; on
HTCondor, a pool whose execute points see it). The jobs' logs go to a temporary folder, removed
afterwards. `dask-jobqueue` is the `[slurm]` extra; it is imported only with --cluster.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from advisor.errors import DomainFailure, InputError

KINDS = ("slurm", "htcondor")
WORKER_START_S = 120.0       # default wait for the first worker job to start and join
MAX_CLUSTER_JOBS = 256


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    from advisor.commands.common import number

    g = parser.add_argument_group("batch-system Dask cluster (dask-jobqueue)")
    g.add_argument("--cluster", choices=KINDS, default=None,
                   help="run the replications on Dask workers started as Slurm or HTCondor jobs")
    g.add_argument("--cluster-jobs", type=number(integer=True, minimum=1,
                                                 maximum=MAX_CLUSTER_JOBS, example="4"),
                   default=2, metavar="N", help="worker jobs to start (default 2)")
    g.add_argument("--worker-cores", type=number(integer=True, minimum=1, maximum=256,
                                                 example="1"),
                   default=1, metavar="N", help="CPU cores per worker job (default 1)")
    g.add_argument("--worker-memory", default="2GiB", metavar="SIZE",
                   help="memory per worker job (default 2GiB)")
    g.add_argument("--worker-walltime", default="01:00:00", metavar="HH:MM:SS",
                   help="time limit of each worker job (default 01:00:00)")
    g.add_argument("--cluster-queue", default=None, metavar="NAME",
                   help="Slurm partition for the worker jobs (default: the cluster's)")
    g.add_argument("--worker-wait", type=number(above=0, maximum=86400, example="300"),
                   default=WORKER_START_S, metavar="SECONDS",
                   help=f"how long to wait for the first worker (default {WORKER_START_S:g})")


def check_cluster_arguments(args: argparse.Namespace) -> None:
    if getattr(args, "cluster", None) is None:
        return
    if getattr(args, "scheduler", None):
        raise InputError("--cluster", args.cluster, "and --scheduler both say where to run.",
                         "give one of them.")
    from dask.utils import parse_bytes

    try:
        if parse_bytes(args.worker_memory) < 2**27:
            raise ValueError("under 128 MiB")
    except ValueError as exc:
        raise InputError("--worker-memory", args.worker_memory, f"is not a memory size ({exc}).",
                         "give e.g. --worker-memory 2GiB.") from None
    parts = str(args.worker_walltime).split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise InputError("--worker-walltime", args.worker_walltime, "is not HH:MM:SS.",
                         "give e.g. --worker-walltime 01:00:00.")


def _cluster_class(kind: str) -> Any:
    try:
        import dask_jobqueue
    except ImportError:
        raise InputError("--cluster", kind, "needs the dask-jobqueue package, which is not "
                         "installed.", "pip install 'gpu-pool-advisor[slurm]' (or pip install "
                         "dask-jobqueue).") from None
    return dask_jobqueue.SLURMCluster if kind == "slurm" else dask_jobqueue.HTCondorCluster


@contextmanager
def batch_cluster(args: argparse.Namespace) -> Iterator[str | None]:
    """The scheduler address of a started dask-jobqueue cluster (None without --cluster); the
    worker jobs are cancelled and the scheduler closed afterwards."""
    kind = getattr(args, "cluster", None)
    if kind is None:
        yield None
        return
    check_cluster_arguments(args)
    cls = _cluster_class(kind)
    submit = "sbatch" if kind == "slurm" else "condor_submit"
    if shutil.which(submit) is None:    # dask-jobqueue would only log the failed submits
        raise DomainFailure(f"cannot start Dask workers on {kind} ({submit} is not on the PATH). "
                            f"To fix: run on a {kind} submit node, or leave out --cluster to run "
                            "here.", {"field": "--cluster", "value": kind})
    logs = tempfile.TemporaryDirectory(prefix="advisor-dask-jobs-")
    options: dict[str, Any] = dict(
        cores=args.worker_cores, memory=args.worker_memory, processes=1,
        walltime=args.worker_walltime, python=sys.executable, log_directory=logs.name,
        silence_logs=logging.ERROR, scheduler_options={"dashboard_address": None})
    if kind == "slurm":
        options["queue"] = args.cluster_queue
    else:
        options["disk"] = "1GiB"
    cluster = None
    try:
        try:
            cluster = cls(**options)
            cluster.scale(jobs=args.cluster_jobs)
        except Exception as exc:  # noqa: BLE001 - a submit that fails (no sbatch, no schedd)
            raise DomainFailure(f"cannot start Dask workers on {kind} ({_short(exc)}). To fix: "
                                f"run where {'sbatch' if kind == 'slurm' else 'condor_submit'} "
                                "works, or leave out --cluster to run here.",
                                {"field": "--cluster", "value": kind}) from None
        _wait_for_worker(cluster, kind, float(args.worker_wait))
        yield str(cluster.scheduler_address)
    finally:
        if cluster is not None:
            cluster.close()
        logs.cleanup()


def _wait_for_worker(cluster: Any, kind: str, timeout: float) -> None:
    from distributed import Client

    with Client(cluster) as client:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (TimeoutError, OSError):
            jobs = ", ".join(sorted(getattr(cluster, "workers", {}))) or "none"
            raise DomainFailure(
                f"no Dask worker joined within {timeout:g} s: the {kind} worker jobs are still "
                f"waiting or failed (jobs: {jobs}). To fix: check them with "
                f"{'squeue' if kind == 'slurm' else 'condor_q'}, ask for fewer resources "
                "(--worker-cores, --worker-memory), or wait longer (--worker-wait).",
                {"field": "--cluster", "value": kind}) from None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:300]
