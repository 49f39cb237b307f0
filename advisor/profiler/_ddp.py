"""Distributed scripts: profile rank 0, record the world size and the per-rank figures.

A script that starts its ranks with ``torch.multiprocessing.spawn`` (or ``start_processes``
with the ``spawn`` or ``forkserver`` method) runs its training in fresh interpreters, where the
hooks installed in the profiled process do not exist. `patch_spawn(rec)` wraps the function the
script hands to spawn in `RankZero`: in rank 0 it installs a `_hooks.Recorder` of its own, with
the same configuration and run directory, before the script's function runs; the other ranks
run as written. The process that called spawn stops its own no-step watchdog and waits; once
rank 0 has written a complete ``results.json``, it stops the other ranks and ends the run. Rank
0's record, complete or a failure, is the run's (`Recorder.write` leaves it alone).

A script started by ``torchrun`` is rank 0 already when the advisor runs as its entry point;
`facts` then reads the world size from ``torch.distributed`` as well.

The figures of the profile (step time, FLOPs, memory, batch size, steps per epoch) are rank 0's:
one rank's share. `facts` adds ``distributed``: the world size, the backend, how the ranks were
started, the per-rank batch and batches per epoch, the global batch, and for
``DistributedDataParallel`` the bytes of gradients all-reduced per step.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch

POLL_S = 0.2
STOP_GRACE_S = 5.0
FRESH_START_METHODS = ("spawn", "forkserver")


def _complete(run_dir: Path) -> bool:
    try:
        return bool(json.loads((run_dir / "results.json").read_text()).get("complete"))
    except (OSError, ValueError):
        return False


class RankZero:
    """The script's spawn target, profiled in rank 0 (picklable: it travels to the ranks)."""

    def __init__(self, fn: Any, cfg: dict, run_dir: str, world_size: int) -> None:
        self.fn = fn
        self.cfg = cfg
        self.run_dir = run_dir
        self.world_size = world_size

    def __call__(self, rank: int, *args: Any) -> Any:
        if rank != 0:
            return self.fn(rank, *args)
        from advisor.profiler import _child
        from advisor.profiler._hooks import Recorder, StopProfiling

        cfg = {**self.cfg, "rank": 0, "world_size": self.world_size,
               "launcher": "torch.multiprocessing.spawn"}
        run_dir = Path(self.run_dir)
        watch = _child._FileWatch(run_dir, Path(cfg["script"]).resolve())
        sys.addaudithook(watch.hook)
        rec = Recorder(cfg, run_dir, watch)
        rec.device_cpu_name = _child._cpu_name()

        def on_term(signum: int, frame: Any) -> None:
            rec.fail("terminated", f"stopped by the advisor (signal {signum})", None, light=True)
            os._exit(128 + signum)

        signal.signal(signal.SIGTERM, on_term)
        rec.install()
        watch.on = True
        try:
            out = self.fn(rank, *args)
        except StopProfiling:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)  # the other ranks are stopped by the process that spawned them
        except BaseException as exc:
            rec.fail(type(exc).__name__, str(exc), exc)
            raise
        rec.finish_early("rank 0's function returned")
        return out


def patch_spawn(rec: Any) -> None:
    """Profile rank 0 of ``torch.multiprocessing.spawn`` / ``start_processes`` runs."""
    sp = sys.modules.get("torch.multiprocessing.spawn")
    if sp is None:
        import torch.multiprocessing  # noqa: F401  (loads the spawn module)
        sp = sys.modules["torch.multiprocessing.spawn"]
    import torch.multiprocessing as tmp
    orig = sp.start_processes

    def start_processes(fn: Any, args: tuple = (), nprocs: int = 1, join: bool = True,
                        daemon: bool = False, start_method: str = "spawn") -> Any:
        if start_method not in FRESH_START_METHODS or rec.n > 0 or rec.delegated:
            return orig(fn, args, nprocs, join, daemon, start_method)
        rec.delegate(nprocs)
        target = RankZero(fn, rec.cfg, str(rec.run_dir), nprocs)
        ctx = orig(target, args, nprocs, False, daemon, start_method)
        if not join:
            return ctx
        while True:
            try:
                if ctx.join(timeout=POLL_S):
                    return None
            except Exception:
                if not _complete(rec.run_dir):
                    raise  # rank 0 did not finish measuring: the script's error stands
            if _complete(rec.run_dir):
                stop_ranks(ctx.processes)
                from advisor.profiler._hooks import StopProfiling
                raise StopProfiling()

    setattr(sp, "start_processes", start_processes)  # noqa: B010  (sp: a ModuleType)
    tmp.start_processes = start_processes


def stop_ranks(processes: list[Any]) -> None:
    """SIGTERM the ranks still running (they were started by this process), then SIGKILL."""
    for p in processes:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(1.0)


def facts(rec: Any, batch: dict[str, Any] | None, models: list[Any],
          grad_bytes: int | None) -> dict[str, Any] | None:
    """The ``distributed`` section of a rank's profile, or None for a single process."""
    dist = torch.distributed
    world = rank = None
    backend = None
    if dist.is_available() and dist.is_initialized():
        world, rank, backend = dist.get_world_size(), dist.get_rank(), str(dist.get_backend())
    world = world or rec.cfg.get("world_size")
    if not world or int(world) <= 1:
        return None
    launcher = rec.cfg.get("launcher")
    if launcher is None:
        launcher = "torchrun" if os.environ.get("TORCHELASTIC_RUN_ID") else "environment"
    ddp = [m for m in models if type(m).__name__ == "DistributedDataParallel"]
    per_rank: dict[str, Any] = {}
    if batch is not None:
        per_rank = {"batch_size": batch.get("size"),
                    "batches_per_epoch": batch.get("batches_per_epoch")}
    out: dict[str, Any] = {
        "world_size": int(world), "rank_profiled": int(rank if rank is not None else
                                                        rec.cfg.get("rank", 0)),
        "backend": backend, "launcher": launcher, "per_rank": per_rank,
        "global_batch_size": (int(per_rank["batch_size"]) * int(world)
                              if per_rank.get("batch_size") else None),
        "ddp": bool(ddp),
        "note": "step time, FLOPs, memory, batch size and steps per epoch are one rank's "
                "(rank 0's); every rank runs the same step on its share of the data",
    }
    if ddp and grad_bytes:
        out["gradient_allreduce_bytes_per_step"] = int(grad_bytes)
    return out
