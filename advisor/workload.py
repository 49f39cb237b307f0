"""Workload files: what a facilitator types in (DESIGN §4.3), validated.

A workload is `tasks` independent units of work, each needing `per_task` resources. The work of
a task is given as GPU hours on a reference GPU (`gpu_hours`), optionally CPU hours on one core
(`cpu_hours`), or as a measured profile (`profile: profiles/x.json` with `steps: N`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from advisor.errors import InputError, nearest
from simulator.catalog import Catalog, load_catalog
from simulator.pool import read_yaml

WORKLOAD_KEYS = ("name", "kind", "tasks", "per_task", "shared_input_gb", "dataset_gb", "container",
                 "resumable", "data_stays_on_campus", "notes", "source")
PER_TASK_KEYS = ("gpu_hours", "cpu_hours", "reference_gpu", "gpu_memory_gb", "memory_gb",
                 "input_gb", "output_gb", "gpus", "nodes", "checkpoint_gb", "precision", "profile",
                 "steps", "cpus")
KINDS = ("training", "inference")
PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "fp8")


@dataclass(frozen=True)
class PerTask:
    gpu_hours: float | None = None          # on reference_gpu
    cpu_hours: float | None = None          # the same task on one CPU core, if it can run there
    reference_gpu: str = "A100-SXM4-80GB"
    gpu_memory_gb: float = 0.0              # device memory one task needs (per GPU)
    memory_gb: float = 2.0                  # host memory
    input_gb: float = 0.0
    output_gb: float = 0.0
    gpus: int = 1
    nodes: int = 1
    cpus: int | None = None                 # CPUs the task wants (data loading); None: decide
    checkpoint_gb: float | None = None
    precision: str | None = None            # the precision the work runs at (speed model)
    profile: str | None = None              # a WorkloadProfile JSON
    steps: int | None = None                # optimizer steps per task (with `profile`)


@dataclass(frozen=True)
class Workload:
    name: str
    kind: str
    tasks: int
    per_task: PerTask
    shared_input_gb: float = 0.0            # model/container every task needs
    dataset_gb: float | None = None
    container: str | None = None
    resumable: bool | None = None           # can a task checkpoint and resume? None: training yes
    data_stays_on_campus: bool = False      # e.g. licensed data that may not leave campus
    notes: str = ""
    source: str = ""
    profile_data: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def can_checkpoint(self) -> bool:
        return self.resumable if self.resumable is not None else self.kind == "training"

    @property
    def uses_gpu(self) -> bool:
        return self.per_task.gpus > 0


def _num(m: Mapping[str, Any], key: str, where: str, *, default: Any = None, lo: float = 0.0,
         hi: float, integer: bool = False, allow_zero: bool = True, unit: str = "") -> Any:
    if key not in m or m[key] is None:
        return default
    v = m[key]
    fld = f"{where}{key}"
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise InputError(fld, v, "must be a number.", f"write {key} as a plain number{unit}.")
    if integer and int(v) != v:
        raise InputError(fld, v, "must be a whole number.", f"write {key} as e.g. 4.")
    if v < lo or (v == 0 and not allow_zero):
        need = "zero or more" if allow_zero else "greater than zero"
        raise InputError(fld, v, f"must be {need}.", f"give a {need} value for {key}{unit}.")
    if v > hi:
        raise InputError(fld, v, f"is implausibly large (the limit is {hi:g}{unit}).",
                         f"check the unit of {key}{unit}.")
    return int(v) if integer else float(v)


def _check_keys(m: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in m:
        if key not in allowed:
            raise InputError(f"{where}{key}", m[key], "is not a known key.",
                             f"use one of: {', '.join(allowed)}.", suggestions=nearest(str(key), allowed))


def workload_from_dict(raw: Any, *, base_dir: Path | None = None, catalog: Catalog | None = None,
                       source: str = "workload") -> Workload:
    try:
        return _from_dict(raw, base_dir or Path.cwd(), catalog or load_catalog(), source)
    except InputError as exc:
        raise exc.with_source(source) from None


def _from_dict(raw: Any, base_dir: Path, catalog: Catalog, source: str) -> Workload:
    if not isinstance(raw, Mapping):
        raise InputError("workload", raw, "must be a mapping.", "see DESIGN §4.3 for the keys.")
    _check_keys(raw, WORKLOAD_KEYS, "")
    name = raw.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name or ""):
        raise InputError("name", name, "must be a short name (letters, digits, - _ .).",
                         "name the workload, e.g. cosmos-pdfs.")
    kind = raw.get("kind", "training")
    if kind not in KINDS:
        raise InputError("kind", kind, "must be training or inference.", "pick one.",
                         suggestions=nearest(str(kind), KINDS))
    if "tasks" not in raw:
        raise InputError("tasks", None, "is missing.", "give the number of independent tasks.")
    tasks = _num(raw, "tasks", "", hi=1e11, integer=True, allow_zero=False)
    pt = raw.get("per_task")
    if not isinstance(pt, Mapping):
        raise InputError("per_task", pt, "must be a mapping.", "write per_task: {gpu_hours: 2, gpu_memory_gb: 8}.")
    _check_keys(pt, PER_TASK_KEYS, "per_task.")
    w = "per_task."
    gpus = _num(pt, "gpus", w, default=1, hi=64, integer=True)
    ref = pt.get("reference_gpu")
    ref_name = catalog.reference.name if ref is None else catalog.get(str(ref), field="per_task.reference_gpu").name
    precision = pt.get("precision")
    if precision is not None and precision not in PRECISIONS:
        raise InputError("per_task.precision", precision, "is not a precision.",
                         f"use one of {', '.join(PRECISIONS)}.", suggestions=nearest(str(precision), PRECISIONS))
    per = PerTask(
        gpu_hours=_num(pt, "gpu_hours", w, hi=1e6, allow_zero=False, unit=" hours"),
        cpu_hours=_num(pt, "cpu_hours", w, hi=1e7, allow_zero=False, unit=" hours"),
        reference_gpu=ref_name,
        gpu_memory_gb=_num(pt, "gpu_memory_gb", w, default=0.0, hi=100_000, unit=" GB"),
        memory_gb=_num(pt, "memory_gb", w, default=2.0, hi=100_000, allow_zero=False, unit=" GB"),
        input_gb=_num(pt, "input_gb", w, default=0.0, hi=1e7, unit=" GB"),
        output_gb=_num(pt, "output_gb", w, default=0.0, hi=1e7, unit=" GB"),
        gpus=gpus,
        nodes=_num(pt, "nodes", w, default=1, hi=10_000, integer=True, allow_zero=False),
        cpus=_num(pt, "cpus", w, hi=1024, integer=True, allow_zero=False),
        checkpoint_gb=_num(pt, "checkpoint_gb", w, hi=1e6, unit=" GB"),
        precision=precision,
        profile=str(pt["profile"]) if pt.get("profile") is not None else None,
        steps=_num(pt, "steps", w, hi=1e12, integer=True, allow_zero=False),
    )
    if per.profile and per.gpu_hours:
        raise InputError("per_task.gpu_hours", per.gpu_hours, "contradicts per_task.profile: "
                         "the work is given twice.", "keep either gpu_hours or profile + steps.")
    if per.profile and not per.steps:
        raise InputError("per_task.steps", None, "is missing: a profile measures one step, the "
                         "task's length needs the number of steps.", "add steps: N (optimizer steps per task).")
    if per.steps and not per.profile:
        raise InputError("per_task.steps", per.steps, "needs per_task.profile.",
                         "add profile: PATH, or give gpu_hours instead of steps.")
    if gpus == 0:
        if per.gpu_hours or per.profile:
            raise InputError("per_task.gpus", 0, "contradicts the GPU work given (gpu_hours/profile).",
                             "set gpus to 1 or more, or give only cpu_hours for a CPU workload.")
        if per.gpu_memory_gb:
            raise InputError("per_task.gpu_memory_gb", per.gpu_memory_gb, "is set but gpus is 0.",
                             "remove gpu_memory_gb or request a GPU.")
    if not (per.gpu_hours or per.cpu_hours or per.profile):
        raise InputError("per_task.gpu_hours", None, "is missing: the task's work is not given.",
                         "give gpu_hours (on reference_gpu), cpu_hours, or profile + steps.")
    profile_data = None
    if per.profile:
        ppath = Path(per.profile)
        if not ppath.is_absolute():  # relative to the workload file, else to the working directory
            ppath = base_dir / ppath if (base_dir / ppath).exists() else Path.cwd() / ppath
        profile_data = load_profile_json(ppath)
        per = replace(per, profile=str(ppath))
    resumable = raw.get("resumable")
    if resumable is not None and not isinstance(resumable, bool):
        raise InputError("resumable", resumable, "must be true or false.", "write resumable: true.")
    campus = raw.get("data_stays_on_campus", False)
    if not isinstance(campus, bool):
        raise InputError("data_stays_on_campus", campus, "must be true or false.", "write true or false.")
    container = raw.get("container")
    return Workload(
        name=name, kind=kind, tasks=tasks, per_task=per,
        shared_input_gb=_num(raw, "shared_input_gb", "", default=0.0, hi=1e6, unit=" GB"),
        dataset_gb=_num(raw, "dataset_gb", "", hi=1e9, unit=" GB"),
        container=str(container) if container else None, resumable=resumable,
        data_stays_on_campus=campus, notes=str(raw.get("notes", "")), source=source,
        profile_data=profile_data,
    )


def load_profile_json(path: Path) -> Mapping[str, Any]:
    """A WorkloadProfile, validated by the profiler's loader (a bad file is an InputError)."""
    from advisor.profiler.schema import load_profile

    return load_profile(path)


def load_workload(path: str | Path, catalog: Catalog | None = None) -> Workload:
    p = Path(path)
    raw = read_yaml(p, "workload")
    return workload_from_dict(raw, base_dir=p.parent, catalog=catalog, source=str(p))


def _epochs_from_args(args: list[str]) -> int | None:
    """The script's own `--epochs N` / `--epochs=N`, when it was profiled with one."""
    for i, a in enumerate(args):
        value = None
        if a in ("--epochs", "--num-epochs", "--num_epochs", "-e") and i + 1 < len(args):
            value = args[i + 1]
        elif a.startswith(("--epochs=", "--num-epochs=", "--num_epochs=")):
            value = a.split("=", 1)[1]
        if value is not None and value.isdigit() and int(value) > 0:
            return int(value)
    return None


def _with_epochs(args: list[str], epochs: int) -> list[str]:
    out = list(args)
    for i, a in enumerate(out):
        if a in ("--epochs", "--num-epochs", "--num_epochs", "-e") and i + 1 < len(out):
            out[i + 1] = str(epochs)
        elif a.startswith(("--epochs=", "--num-epochs=", "--num_epochs=")):
            out[i] = a.split("=", 1)[0] + f"={epochs}"
    return out


def workload_from_profile(path: str | Path, *, tasks: int = 1, steps: int | None = None,
                          epochs: int | None = None, catalog: Catalog | None = None) -> Workload:
    """A one-task-per-run workload from a WorkloadProfile: the task is `steps` optimizer steps,
    or `epochs` × the profile's steps per epoch (default: the script's own --epochs, else 1)."""
    p = Path(path)
    prof = load_profile_json(p)
    assumed: list[str] = []
    if steps is None:
        spe = prof.get("steps_per_epoch")
        if not spe:
            raise InputError("steps", None, f"is needed: the profile {p} has no steps_per_epoch "
                             "(the DataLoader has no length).", "pass --steps N (optimizer steps per task).")
        if epochs is None:
            epochs = _epochs_from_args(list(prof.get("args") or []))
            if epochs is None:
                epochs = 1
                assumed.append("one epoch per task (pass --epochs or --steps)")
            else:
                assumed.append(f"{epochs} epochs per task, from the script's --epochs")
        steps = int(spe) * int(epochs)
    if epochs is not None and _epochs_from_args(list(prof.get("args") or [])) not in (None, epochs):
        # The job runs the script with the epochs asked for, not the ones it was profiled with.
        prof = {**prof, "args": _with_epochs(list(prof.get("args") or []), epochs)}
    peak = prof.get("peak_memory_bytes") or {}
    data = prof.get("data") or {}
    per = PerTask(
        reference_gpu=(catalog or load_catalog()).reference.name,
        gpu_memory_gb=float(peak.get("device") or 0) / 2**30,
        memory_gb=max(1.0, float(peak.get("host") or 0) / 2**30),
        input_gb=float(data.get("bytes") or 0) / 1e9,
        checkpoint_gb=float(prof.get("checkpoint_bytes") or 0) / 1e9,
        gpus=1, nodes=1, profile=str(p), steps=int(steps),
    )
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", Path(str(prof.get("script", p.stem))).stem)[:64] or "profile"
    kind = "training" if prof.get("mode", "torch") == "torch" else "inference"
    return Workload(name=name, kind=kind, tasks=tasks, per_task=per, source=str(p),
                    profile_data=prof, notes="; ".join(assumed))


def load_workload_or_profile(path: str | Path, *, tasks: int | None = None, steps: int | None = None,
                             epochs: int | None = None, catalog: Catalog | None = None) -> Workload:
    """A `.json` is a WorkloadProfile, anything else a workload YAML."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        return workload_from_profile(p, tasks=tasks or 1, steps=steps, epochs=epochs, catalog=catalog)
    w = load_workload(p, catalog=catalog)
    if tasks is not None:
        w = replace(w, tasks=tasks)
    return w
