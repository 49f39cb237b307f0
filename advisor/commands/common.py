"""Argument helpers shared by commands."""

from __future__ import annotations

import argparse

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


def load_target(args: argparse.Namespace):
    """(workload, pool, catalog) from the common workload and pool arguments."""
    from advisor.errors import InputError
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
