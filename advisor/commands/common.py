"""Argument helpers shared by commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from advisor.errors import InputError
from advisor.output import STDERR

if TYPE_CHECKING:
    from advisor.workload import Workload
    from simulator.catalog import Catalog
    from simulator.pool import Pool

DEFAULT_POOL = "chtc"


def add_pool_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pool", default=DEFAULT_POOL, metavar="NAME|PATH",
                        help=f"a shipped pool (chtc, ospool) or a pool YAML file (default: {DEFAULT_POOL})")


def add_workload_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workload_path", metavar="WORKLOAD_OR_PROFILE",
                        help="a workload YAML (DESIGN §4.3) or a profile JSON from `advisor profile`")
    parser.add_argument("--tasks", type=int, default=None,
                        help="number of independent tasks (overrides the workload; profiles: 1)")
    parser.add_argument("--steps", type=int, default=None,
                        help="profiles: optimizer steps per task (default: epochs × steps per epoch)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="profiles: epochs per task (default: the script's --epochs, else 1)")


def load_target(args: argparse.Namespace) -> tuple[Workload, Pool, Catalog]:
    """(workload, pool, catalog) from the common workload and pool arguments."""
    from advisor.workload import load_workload_or_profile
    from simulator.catalog import load_catalog
    from simulator.pool import load_pool

    for name in ("tasks", "steps", "epochs"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise InputError(f"--{name}", value, "must be 1 or more.", f"give a positive --{name}.")
    catalog = load_catalog()
    pool = load_pool(args.pool, catalog=catalog)
    workload = load_workload_or_profile(args.workload_path, tasks=args.tasks, steps=args.steps,
                                        epochs=args.epochs, catalog=catalog)
    return workload, pool, catalog


@contextmanager
def progress_bar(title: str) -> Iterator[Callable[..., None]]:
    """A transient rich progress bar on stderr; yields `update(done, total, label="")`."""
    with Progress(TextColumn(title), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=STDERR, transient=True) as bar:
        task = bar.add_task("", total=1)

        def update(done: int, total: int, label: str = "") -> None:
            bar.update(task, completed=done, total=total, description=label)

        yield update


def add_run_arguments(parser: argparse.ArgumentParser, *, default_replications: int | None) -> None:
    """--replications, --seed, --workers, --scheduler for commands that run simulations on Dask."""
    shown = "the scenario's" if default_replications is None else str(default_replications)
    parser.add_argument("--replications", "-r", type=int, default=default_replications,
                        help=f"independent replications (default: {shown})")
    parser.add_argument("--seed", "-s", type=int, default=None, help="random seed (default: the scenario's)")
    parser.add_argument("--workers", "-w", type=int, default=1,
                        help="Dask workers: 0 runs in this process, 1 an in-process cluster, N local processes")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="an existing Dask scheduler (e.g. one started on HTCondor or Slurm with dask-jobqueue)")


def check_run_arguments(args: argparse.Namespace) -> None:
    if args.replications is not None and args.replications < 1:
        raise InputError("--replications", args.replications, "must be at least 1.",
                         "give e.g. --replications 10.")
    if args.workers < 0:
        raise InputError("--workers", args.workers, "must be 0 or more.", "give e.g. --workers 2.")
    if args.seed is not None and args.seed < 0:
        raise InputError("--seed", args.seed, "must be 0 or more.", "give e.g. --seed 1.")


def add_recommend_arguments(parser: argparse.ArgumentParser) -> None:
    """--objective, --replications, --seed, --background-load: how `recommend` (and the report
    built on it) weighs candidates."""
    from advisor.recommend import DEFAULT_BACKGROUND_LOAD, OBJECTIVES

    parser.add_argument("--objective", default="mean", choices=OBJECTIVES,
                        help="choose by the mean time-to-results or its 90th percentile")
    parser.add_argument("--replications", type=int, default=4,
                        help="simulated replications per candidate (default 4)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--background-load", type=float, default=DEFAULT_BACKGROUND_LOAD,
                        help="busy fraction of the shared GPUs from other users "
                             f"(default {DEFAULT_BACKGROUND_LOAD})")
