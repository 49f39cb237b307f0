"""Workload files: what a facilitator types in (docs/DESIGN.md §4.3), validated.

A workload is `tasks` independent units of work, each needing `per_task` resources. The work of
a task is given as GPU hours on a reference GPU (`gpu_hours`), optionally CPU hours on one core
(`cpu_hours`), or as a measured profile (`profile: profiles/x.json` with `steps: N`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from advisor.errors import InputError
from simulator.catalog import Catalog, load_catalog
from simulator.files import read_yaml
from simulator.validate import REQUIRED, boolean, choice, join, known_keys, mapping, number, string

WORKLOAD_KEYS = ("name", "kind", "tasks", "per_task", "shared_input_gb", "dataset_gb", "container",
                 "resumable", "saves_on_sigterm", "data_stays_on_campus", "notes", "source")
PER_TASK_KEYS = ("gpu_hours", "cpu_hours", "reference_gpu", "gpu_memory_gb", "memory_gb",
                 "input_gb", "output_gb", "gpus", "nodes", "checkpoint_gb", "precision", "profile",
                 "steps", "cpus")
KINDS = ("training", "inference")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
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
    saves_on_sigterm: bool | None = None    # the program saves a checkpoint on SIGTERM (None: look)
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


# Each field's range, declared once. `minimum=0`: zero is meaningful (gpus: 0 is a CPU job, no
# input, no GPU memory); `exclusive_minimum=0`: zero means nothing (0 tasks, 0 hours of work).
_PER_TASK_NUMBERS: dict[str, dict[str, Any]] = {
    "gpu_hours": {"exclusive_minimum": 0, "maximum": 1e6, "unit": " hours"},
    "cpu_hours": {"exclusive_minimum": 0, "maximum": 1e7, "unit": " hours"},
    "gpu_memory_gb": {"minimum": 0, "maximum": 100_000, "unit": " GB", "default": 0.0},
    "memory_gb": {"exclusive_minimum": 0, "maximum": 100_000, "unit": " GB", "default": 2.0},
    "input_gb": {"minimum": 0, "maximum": 1e7, "unit": " GB", "default": 0.0},
    "output_gb": {"minimum": 0, "maximum": 1e7, "unit": " GB", "default": 0.0},
    "gpus": {"minimum": 0, "maximum": 64, "integer": True, "default": 1},
    "nodes": {"exclusive_minimum": 0, "maximum": 10_000, "integer": True, "default": 1},
    "cpus": {"exclusive_minimum": 0, "maximum": 1024, "integer": True},
    "checkpoint_gb": {"minimum": 0, "maximum": 1e6, "unit": " GB"},
    "steps": {"exclusive_minimum": 0, "maximum": 1e12, "integer": True},
}
_WORKLOAD_NUMBERS: dict[str, dict[str, Any]] = {
    "tasks": {"exclusive_minimum": 0, "maximum": 1e11, "integer": True, "default": REQUIRED},
    "shared_input_gb": {"minimum": 0, "maximum": 1e6, "unit": " GB", "default": 0.0},
    "dataset_gb": {"minimum": 0, "maximum": 1e9, "unit": " GB"},
}


def _numbers(m: Mapping[str, Any], rules: dict[str, dict[str, Any]], where: str) -> dict[str, Any]:
    """Every field of `rules` read from `m` (absent ones: their default, else None)."""
    return {key: number(m.get(key), join(where, key), **{"default": None, **rule})
            for key, rule in rules.items()}


def workload_from_dict(raw: Any, *, base_dir: Path | None = None, catalog: Catalog | None = None,
                       source: str = "workload") -> Workload:
    try:
        return _from_dict(raw, base_dir or Path.cwd(), catalog or load_catalog(), source)
    except InputError as exc:
        raise exc.with_source(source) from None


def _from_dict(raw: Any, base_dir: Path, catalog: Catalog, source: str) -> Workload:
    mapping(raw, "workload", "{name: x, tasks: 10, per_task: {gpu_hours: 2}}")
    known_keys(raw, WORKLOAD_KEYS)
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InputError("name", name, "must be a short name (letters, digits, - _ .).",
                         "name the workload, e.g. cosmos-pdfs.")
    kind = choice(raw.get("kind"), "kind", KINDS, default="training")
    top = _numbers(raw, _WORKLOAD_NUMBERS, "")
    pt = mapping(raw.get("per_task"), "per_task", "per_task: {gpu_hours: 2, gpu_memory_gb: 8}")
    known_keys(pt, PER_TASK_KEYS, "per_task")
    nums = _numbers(pt, _PER_TASK_NUMBERS, "per_task")
    gpus = nums["gpus"]
    ref = pt.get("reference_gpu")
    ref_name = catalog.reference.name if ref is None else catalog.get(str(ref), field="per_task.reference_gpu").name
    per = PerTask(
        **nums, reference_gpu=ref_name,
        precision=choice(pt.get("precision"), "per_task.precision", PRECISIONS, default=None),
        profile=string(pt.get("profile"), "per_task.profile", default=None, allow_empty=False),
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
    return Workload(
        name=name, kind=kind, tasks=top["tasks"], per_task=per,
        shared_input_gb=top["shared_input_gb"], dataset_gb=top["dataset_gb"],
        container=string(raw.get("container"), "container", default="") or None,
        resumable=boolean(raw.get("resumable"), "resumable", default=None),
        saves_on_sigterm=boolean(raw.get("saves_on_sigterm"), "saves_on_sigterm", default=None),
        data_stays_on_campus=boolean(raw.get("data_stays_on_campus"), "data_stays_on_campus",
                                     default=False),
        notes=string(raw.get("notes"), "notes", default="", multiline=True, coerce=True),
        source=source, profile_data=profile_data,
    )


MAX_SCRIPT_BYTES = 1_000_000   # a training script larger than this is not read for hints


def script_text(workload: Workload) -> tuple[str, str] | None:
    """(path, text) of the profiled training script, when there is one small enough to read."""
    prof = workload.profile_data
    if prof is None or not prof.get("script"):
        return None
    path = Path(str(prof["script"]))
    try:
        if not path.is_file() or path.stat().st_size >= MAX_SCRIPT_BYTES:
            return None
        return str(path), path.read_text(errors="replace")
    except OSError:
        return None


def sigterm_save(workload: Workload) -> tuple[bool, str]:
    """Whether the program saves a checkpoint into ADVISOR_CHECKPOINT_DIR when it gets SIGTERM
    (an eviction's, forwarded by the emitted wrapper), and how that is known: the workload's
    `saves_on_sigterm`, else the profiled script (it names SIGTERM and the directory)."""
    if workload.saves_on_sigterm is not None:
        return workload.saves_on_sigterm, "stated in the workload (saves_on_sigterm)"
    found = script_text(workload)
    if found is None:
        return False, ("not known: set saves_on_sigterm: true in the workload if the program saves a "
                       "checkpoint when it gets SIGTERM")
    path, text = found
    name = Path(path).name
    if re.search(r"\bSIGTERM\b", text) and "ADVISOR_CHECKPOINT_DIR" in text:
        return True, f"{name} handles SIGTERM and writes to ADVISOR_CHECKPOINT_DIR"
    return False, f"{name} has no SIGTERM handler that writes to ADVISOR_CHECKPOINT_DIR"


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
