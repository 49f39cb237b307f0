"""The job's sandbox and the access point's spool, as folders on this machine.

An execute point gives each start a fresh scratch folder holding only the transferred inputs and
the executable; at an exit 85 it copies `transfer_checkpoint_files` to the access point's spool
(keeping their relative paths), and a later start in a new sandbox gets them back. Outputs come
back under their base names unless `preserve_relative_paths = true` (HTCondor manual,
condor_submit "transfer_output_files").
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

from advisor.trial.job import Job

SANDBOX_PREFIX = "advisor-trial-sandbox-"
SPOOL_PREFIX = "advisor-trial-spool-"
STDOUT_NAME = "_condor_stdout"      # what the starter calls the job's stdout and stderr
STDERR_NAME = "_condor_stderr"
JOB_AD_NAME = ".job.ad"
# Files of the execute point's own, never transferred back as outputs.
SYSTEM_FILES = {STDOUT_NAME, STDERR_NAME, JOB_AD_NAME, ".machine.ad", ".chirp.config"}


def new_folder(prefix: str, parent: str | None = None) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def copy_any(src: Path, dest: Path) -> None:
    """Copy a file or a folder (recursively) to `dest`, replacing what is there."""
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    elif dest.exists() or dest.is_symlink():
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dest, symlinks=True)
    else:
        shutil.copy2(src, dest)


def merge_into(src: Path, dest: Path) -> list[str]:
    """Copy every entry of folder `src` into folder `dest` (replacing); the names copied."""
    names = []
    for child in sorted(src.iterdir()):
        copy_any(child, dest / child.name)
        names.append(child.name)
    return names


def populate(sandbox: Path, job: Job) -> list[str]:
    """Put the inputs and the executable into a fresh sandbox; the names placed there."""
    placed = []
    for item in job.inputs:
        if item.contents_only:
            placed += merge_into(item.source, sandbox)
            continue
        name = item.entry.rstrip("/").rsplit("/", 1)[-1]   # the base name, also for a URL
        copy_any(item.source, sandbox / name)
        placed.append(name)
    if job.transfer_executable:
        exe = sandbox / job.executable.name
        copy_any(job.executable, exe)
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        placed.append(exe.name)
    return placed


def missing(sandbox: Path, entries: list[str]) -> list[str]:
    return [e for e in entries if not (sandbox / e.rstrip("/")).exists()]


def spool(sandbox: Path, entries: list[str], dest: Path, relative: bool = True) -> list[str]:
    """Copy the listed paths (those that exist) from the sandbox into a fresh `dest`.
    `relative`: keep each entry's path (checkpoint files); else its base name (output files)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    copied = []
    for entry in entries:
        src = sandbox / entry.rstrip("/")
        if not src.exists():
            continue
        if entry.endswith("/") and src.is_dir():
            merge_into(src, dest if not relative else dest / entry.rstrip("/"))
        else:
            copy_any(src, dest / (entry.rstrip("/") if relative else src.name))
        copied.append(entry)
    return copied


def top_level_state(sandbox: Path) -> dict[str, float]:
    """name -> mtime of the plain files at the sandbox's top level."""
    out = {}
    for child in sandbox.iterdir():
        if child.is_file() and not child.is_symlink():
            out[child.name] = child.stat().st_mtime
    return out


def new_or_changed(sandbox: Path, before: dict[str, float]) -> list[str]:
    """What HTCondor sends back without transfer_output_files: top-level files that are new or
    changed since the job started (folders are not sent unless listed)."""
    now = top_level_state(sandbox)
    return sorted(n for n, t in now.items()
                  if n not in SYSTEM_FILES and (n not in before or t != before[n]))


def write_job_ad(sandbox: Path, job: Job, job_starts: int) -> None:
    """A small `.job.ad` like the starter's (NumJobStarts, as HTCondor does, is not changed by
    an exit-85 restart: only a new start in a new sandbox counts)."""
    ad = {
        "ClusterId": 1, "ProcId": job.process, "NumJobStarts": job_starts,
        "RequestCpus": job.request_cpus, "RequestGpus": job.request_gpus,
        "RequestMemory": int(job.request_memory_mb), "RequestDisk": int(job.request_disk_kb),
        "Cmd": f'"{job.executable.name}"', "Iwd": f'"{job.base_dir}"',
    }
    text = "".join(f"{k} = {v}\n" for k, v in ad.items())
    (sandbox / JOB_AD_NAME).write_text(text, encoding="utf-8")


def tail(path: Path, lines: int = 20, max_bytes: int = 8192) -> str:
    """The last `lines` lines of a file (empty when there is none)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def remove(path: Path | None) -> None:
    if path is not None and path.exists():
        shutil.rmtree(path, ignore_errors=True)
