"""Argument helpers shared by commands."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from advisor.errors import DomainFailure, InputError
from advisor.output import STDERR
from simulator.scenario import MAX_REPLICATIONS

if TYPE_CHECKING:
    from advisor.workload import Workload
    from simulator.catalog import Catalog
    from simulator.pool import Pool

DEFAULT_POOL = "chtc"
MAX_TASKS = 10**15              # tasks, steps, epochs: beyond this a number is a typo
MAX_WORKERS = 1024
MAX_SEED = 2**63 - 1
SCHEDULER_CONNECT_S = 5.0       # how long to wait for a Dask scheduler's port before giving up
SCHEDULER_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx", "inproc")


class Number:
    """An argparse `type=` for a finite number in a range.

    Parsing only converts (a word that is not a number is a usage error, as with `type=int`);
    the CLI then calls `check` on every parsed value, so NaN, infinities and values out of range
    are an InputError naming the option (exit 2, JSON under --json). `minimum`/`maximum` are
    inclusive, `above`/`below` exclusive; whole numbers must be whole (`--rows 2.5` is refused).
    """

    def __init__(self, *, integer: bool = False, minimum: float | None = None,
                 maximum: float | None = None, above: float | None = None,
                 below: float | None = None, example: str = "") -> None:
        self.integer = integer
        self.minimum, self.maximum, self.above, self.below = minimum, maximum, above, below
        self.example = example
        self.__name__ = "integer" if integer else "number"   # argparse names the type by it

    def __call__(self, text: str) -> float | int:
        return int(text, 10) if self.integer else float(text)

    def __repr__(self) -> str:
        return self.__name__

    def need(self) -> str:
        parts = []
        if self.minimum is not None:
            parts.append(f"at least {self.minimum:g}")
        if self.above is not None:
            parts.append(f"greater than {self.above:g}")
        if self.below is not None:
            parts.append(f"less than {self.below:g}")
        if self.maximum is not None:
            parts.append(f"at most {self.maximum:g}")
        kind = "a whole number" if self.integer else "a finite number"
        return kind + (" " + " and ".join(parts) if parts else "")

    def check(self, option: str, value: float | int) -> None:
        fix = f"give {self.need()}" + (f", e.g. {option} {self.example}." if self.example else ".")
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(option, value, "is not a finite number.", fix)
        if ((self.minimum is not None and value < self.minimum)
                or (self.maximum is not None and value > self.maximum)
                or (self.above is not None and value <= self.above)
                or (self.below is not None and value >= self.below)):
            raise InputError(option, value, f"is out of range (must be {self.need()}).", fix)


def number(*, integer: bool = False, minimum: float | None = None, maximum: float | None = None,
           above: float | None = None, below: float | None = None, example: str = "") -> Number:
    """The `type=` of every numeric option (see `Number`)."""
    return Number(integer=integer, minimum=minimum, maximum=maximum, above=above, below=below,
                  example=example)


def check_numbers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Check every parsed value of an option declared with `type=number(...)`."""
    for action in parser._actions:
        if isinstance(action.type, Number):
            value = getattr(args, action.dest, None)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                option = max(action.option_strings, key=len) if action.option_strings else action.dest
                action.type.check(option, value)


def check_scheduler(address: str | None, option: str = "--scheduler") -> None:
    """A Dask scheduler address that parses (else exit 2) and answers on its port within
    SCHEDULER_CONNECT_S seconds (else exit 1), checked before any simulation starts."""
    if address is None:
        return
    text = str(address).strip()
    fix = "give the address of a running Dask scheduler, e.g. tcp://host:8786."
    parts = urlsplit(text if "://" in text else f"tcp://{text}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in SCHEDULER_SCHEMES or any(c.isspace() for c in text):
        raise InputError(option, address, "is not a Dask scheduler address.", fix)
    if parts.scheme == "inproc":
        return
    if not parts.hostname or port is None or not 0 < port < 65536 or parts.path not in ("", "/"):
        raise InputError(option, address, "is not a Dask scheduler address (scheme://host:port).",
                         fix)
    why = _probe_scheduler(text)
    if why is not None:
        raise DomainFailure(f"the Dask scheduler at {address} cannot be reached ({why}; waited up "
                            f"to {SCHEDULER_CONNECT_S:g} s). To fix: start the scheduler, or check "
                            "the address and the firewall; without --scheduler the replications "
                            "run on this machine.", {"field": option, "value": address}) from None


def _probe_scheduler(address: str) -> str | None:
    """None when a Dask scheduler answers `identity` at `address` within SCHEDULER_CONNECT_S;
    else why not (refused, timed out, something else answering)."""
    import asyncio

    from distributed.comm import connect

    async def probe() -> object:
        comm = await asyncio.wait_for(connect(address, timeout=SCHEDULER_CONNECT_S),
                                      SCHEDULER_CONNECT_S + 1)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await asyncio.wait_for(comm.read(), SCHEDULER_CONNECT_S)
        finally:
            comm.abort()

    try:
        reply = asyncio.run(probe())
    except (TimeoutError, asyncio.TimeoutError):
        return "timed out"
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__
    except Exception as exc:  # noqa: BLE001 - whatever answered (a garbled length is a
        return f"no Dask scheduler answered: {type(exc).__name__}"  # MemoryError) is not one
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        return "no Dask scheduler answered"
    return None


def add_pool_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pool", default=DEFAULT_POOL, metavar="NAME|PATH",
                        help=f"a shipped pool (chtc, ospool) or a pool YAML file (default: {DEFAULT_POOL})")


def add_workload_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workload_path", metavar="WORKLOAD_OR_PROFILE",
                        help="a workload YAML (docs/DESIGN.md §4.3) or a profile JSON from `advisor profile`")
    count = number(integer=True, minimum=1, maximum=MAX_TASKS, example="100")
    parser.add_argument("--tasks", type=count, default=None,
                        help="number of independent tasks (overrides the workload; profiles: 1)")
    parser.add_argument("--steps", type=count, default=None,
                        help="profiles: optimizer steps per task (default: epochs × steps per epoch)")
    parser.add_argument("--epochs", type=count, default=None,
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
    parser.add_argument("--replications", "-r", type=replications_type(), default=default_replications,
                        help=f"independent replications (default: {shown}; at most {MAX_REPLICATIONS:,})")
    parser.add_argument("--seed", "-s", type=seed_type(), default=None,
                        help="random seed (default: the scenario's)")
    parser.add_argument("--workers", "-w", type=number(integer=True, minimum=0, maximum=MAX_WORKERS,
                                                       example="2"), default=1,
                        help="0 or 1 run in this process; N local Dask worker processes (used "
                             "only when the work outweighs their start)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="an existing Dask scheduler (e.g. one started on HTCondor or Slurm with dask-jobqueue)")
    from advisor.cluster import add_cluster_arguments

    add_cluster_arguments(parser)


def replications_type() -> Number:
    """Replications on the command line: the same limit as `replications:` in a scenario."""
    return number(integer=True, minimum=1, maximum=MAX_REPLICATIONS, example="10")


def seed_type() -> Number:
    return number(integer=True, minimum=0, maximum=MAX_SEED, example="1")


def check_run_arguments(args: argparse.Namespace) -> None:
    if args.replications is not None and not 1 <= args.replications <= MAX_REPLICATIONS:
        raise InputError("--replications", args.replications,
                         f"must be between 1 and {MAX_REPLICATIONS:,}.",
                         "give e.g. --replications 10.")
    if args.workers < 0:
        raise InputError("--workers", args.workers, "must be 0 or more.", "give e.g. --workers 2.")
    if args.seed is not None and args.seed < 0:
        raise InputError("--seed", args.seed, "must be 0 or more.", "give e.g. --seed 1.")
    from advisor.cluster import check_cluster_arguments

    check_cluster_arguments(args)
    check_scheduler(getattr(args, "scheduler", None))


def add_recommend_arguments(parser: argparse.ArgumentParser) -> None:
    """--objective, --replications, --seed, --background-load: how `recommend` (and the report
    built on it) weighs candidates."""
    from advisor.recommend import DEFAULT_BACKGROUND_LOAD, OBJECTIVES

    parser.add_argument("--objective", default="mean", choices=OBJECTIVES,
                        help="choose by the mean time-to-results or its 90th percentile")
    parser.add_argument("--replications", type=replications_type(), default=4,
                        help="simulated replications per candidate (default 4)")
    parser.add_argument("--seed", type=seed_type(), default=1, help="random seed (default 1)")
    parser.add_argument("--background-load", default=DEFAULT_BACKGROUND_LOAD,
                        type=number(minimum=0, below=1, example="0.6"),
                        help="busy fraction of the shared GPUs from other users "
                             f"(default {DEFAULT_BACKGROUND_LOAD})")
