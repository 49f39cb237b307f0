"""Emitters: a Request and a JobSpec become an HTCondor submit file, a Slurm batch script or a
Kubernetes Job, plus the checkpoint wrapper when the job checkpoints.

The `render_*` functions are pure (text out, nothing written); `write_files` writes the chosen
targets atomically into a folder and returns their paths.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from advisor.emit.common import WRAPPER_NAME
from advisor.emit.htcondor import plan_transfers, render_htcondor, submit_file_name
from advisor.emit.kubernetes import job_manifest, manifest_file_name, render_kubernetes
from advisor.emit.slurm import render_slurm, script_file_name
from advisor.emit.wrapper import render_checkpoint_wrapper
from advisor.errors import InputError, nearest
from advisor.output import atomic_write
from advisor.request import JobSpec, Request
from simulator.pool import Pool

TARGETS = ("htcondor", "slurm", "kubernetes")


def write_files(request: Request, job: JobSpec, pool: Pool, out_dir: str | Path,
                targets: Iterable[str] = ("htcondor",)) -> list[Path]:
    """Write the files for each target into `out_dir`; the wrapper (HTCondor's executable, run by
    the Slurm script) when the job checkpoints and an HTCondor or Slurm file is written. Returns the paths, in writing order."""
    wanted = []
    for t in targets:
        key = str(t).lower()
        if key not in TARGETS:
            raise InputError("target", t, "is not a target the advisor writes.",
                             f"use one of: {', '.join(TARGETS)}.", suggestions=nearest(str(t), TARGETS))
        if key not in wanted:
            wanted.append(key)
    if not wanted:
        raise InputError("target", [], "no target was given.", f"name at least one of: {', '.join(TARGETS)}.")
    # Render everything first, so that a bad request writes nothing.
    rendered: list[tuple[str, str, int | None]] = []
    for key in wanted:
        if key == "htcondor":
            rendered.append((submit_file_name(job), render_htcondor(request, job, pool), None))
        elif key == "slurm":
            rendered.append((script_file_name(job), render_slurm(request, job, pool), 0o755))
        else:
            rendered.append((manifest_file_name(job), render_kubernetes(request, job, pool), None))
    if request.checkpoints and ("htcondor" in wanted or "slurm" in wanted):
        rendered.append((WRAPPER_NAME, render_checkpoint_wrapper(request, job), 0o755))
    out = Path(out_dir)
    return [atomic_write(out / name, text, mode=0o644 if mode is None else mode)
            for name, text, mode in rendered]


__all__ = ["TARGETS", "WRAPPER_NAME", "job_manifest", "plan_transfers", "render_checkpoint_wrapper",
           "render_htcondor", "render_kubernetes", "render_slurm", "write_files"]
