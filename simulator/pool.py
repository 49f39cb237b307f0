"""The pool: GPU slot classes, CPU slots, length tiers with per-user limits, eviction, data rules.

A pool comes from a shipped name (`chtc`, `ospool`), a YAML path, or an inline mapping (in a
scenario). `load_pool` validates every field; a bad value raises `ConfigError` naming the
field, the value and the fix. Slots owned by a research group (`owner` other than `shared`) are
reachable by other users only as evictable backfill (`+is_resumable`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from simulator.catalog import Catalog, data_dir, load_catalog
from simulator.distributions import Distribution, parse_distribution
from simulator.errors import ConfigError, nearest, read_input_text

POOL_KEYS = ("name", "description", "scheduler", "tier_attribute", "slots", "cpu_slots", "tiers",
             "eviction", "data_rules", "fit_table", "limits", "source", "assumptions")
SLOT_KEYS = ("gpu", "count", "owner", "cpus", "memory_gb", "disk_gb", "gpu_memory_gb", "servers",
             "eviction", "source", "label")
TIER_KEYS = ("name", "max_hours", "expected_hours", "per_user_share", "per_user_gpus", "default",
             "source")

# Defaults for an inline pool in a scenario: generous so that they never block a match.
DEFAULT_SLOT_CPUS = 16
DEFAULT_SLOT_MEMORY_GB = 128.0
DEFAULT_SLOT_DISK_GB = 500.0


@dataclass(frozen=True)
class SlotClass:
    """`count` identical GPU slots: one GPU each, with its share of the server's CPUs and memory."""

    label: str
    gpu: str
    count: int
    owner: str
    capability: float
    gpu_memory_gb: float
    cpus: int
    memory_gb: float
    disk_gb: float
    time_to_eviction: Distribution | None
    eviction_specified: bool
    servers: int | None = None
    source: str = ""

    @property
    def backfill_only(self) -> bool:
        """Owned by a research group: other users run here only as evictable backfill."""
        return self.owner != "shared"

    @property
    def gpu_memory_mb(self) -> int:
        return int(round(self.gpu_memory_gb * 1024))


@dataclass(frozen=True)
class Tier:
    """A job-length class (`+GPUJobLength`, `+JobDurationCategory`): jobs running past
    `max_hours` are held. The per-user limit is a share of the pool's *shared* GPUs (CHTC: "2/3
    of GPU Lab GPUs"; owned GPUs are backfill and do not count) or an absolute count."""

    name: str
    max_hours: float
    per_user_share: float | None = None
    per_user_gpus: int | None = None
    default: bool = False
    expected_hours: float | None = None
    source: str = ""

    def per_user_limit(self, pool_gpus: int) -> int | None:
        """How many GPUs one user may hold in this tier at once (None: no limit).

        `pool_gpus` is the number of shared GPUs (`Pool.shared_gpus`)."""
        if self.per_user_gpus is not None:
            return self.per_user_gpus
        if self.per_user_share is not None:
            return max(1, int(math.floor(self.per_user_share * pool_gpus + 1e-9)))
        return None


@dataclass(frozen=True)
class CpuSlots:
    count: int
    memory_gb: float
    max_hours: float | None = None
    source: str = ""


@dataclass(frozen=True)
class DataRule:
    """How files of up to `max_gb` per file reach a job (`method`), with the submit-file `how`."""

    max_gb: float | None
    method: str
    how: str
    source: str = ""


@dataclass(frozen=True)
class Pool:
    name: str
    slots: tuple[SlotClass, ...]
    tiers: tuple[Tier, ...]
    cpu_slots: CpuSlots | None = None
    description: str = ""
    scheduler: str = "htcondor"
    tier_attribute: str | None = None
    data_rules: tuple[DataRule, ...] = ()
    fit_table: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    limits: Mapping[str, Any] = field(default_factory=dict)
    assumptions: tuple[str, ...] = ()
    source: str = ""

    @property
    def total_gpus(self) -> int:
        return sum(s.count for s in self.slots)

    @property
    def shared_gpus(self) -> int:
        return sum(s.count for s in self.slots if not s.backfill_only)

    def gpus_by_type(self, *, include_owned: bool = True) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.slots:
            if include_owned or not s.backfill_only:
                out[s.gpu] = out.get(s.gpu, 0) + s.count
        return out

    @property
    def default_tier(self) -> Tier | None:
        for t in self.tiers:
            if t.default:
                return t
        return self.tiers[0] if self.tiers else None

    def tier(self, name: str, field_name: str = "job_length") -> Tier:
        for t in self.tiers:
            if t.name.lower() == str(name).lower():
                return t
        names = [t.name for t in self.tiers]
        raise ConfigError(field_name, name, f"is not a length tier of pool {self.name!r} "
                          f"({', '.join(names) or 'it has none'}).",
                          "use one of the pool's tiers (see `advisor pools`).",
                          suggestions=nearest(str(name), names))

    @property
    def max_gpu_memory_gb(self) -> float:
        return max((s.gpu_memory_gb for s in self.slots), default=0.0)


def _require_mapping(value: Any, field_name: str, example: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(field_name, value, "must be a mapping.", f"write it as e.g. {example}.")
    return value


def _check_keys(mapping: Mapping[str, Any], allowed: tuple[str, ...], field_name: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise ConfigError(f"{field_name}.{key}" if field_name else str(key), mapping[key],
                              "is not a known key.", f"use one of: {', '.join(allowed)}.",
                              suggestions=nearest(str(key), allowed))


def _num(m: Mapping[str, Any], key: str, field_name: str, *, default: Any = ..., lo: float = 0.0,
         hi: float = float("inf"), integer: bool = False, allow_zero: bool = False) -> Any:
    if key not in m or m[key] is None:
        if default is ...:
            raise ConfigError(f"{field_name}.{key}", None, "is missing.", f"add {key}.")
        return default
    v = m[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"{field_name}.{key}", v, "must be a number.", f"write {key} as a plain number.")
    if integer and int(v) != v:
        raise ConfigError(f"{field_name}.{key}", v, "must be a whole number.", f"write {key} as e.g. 4.")
    if v < lo or (v == lo and not allow_zero and lo == 0.0) or v > hi:
        low = f">= {lo:g}" if allow_zero or lo != 0.0 else "> 0"
        raise ConfigError(f"{field_name}.{key}", v, f"is out of range (must be {low} and <= {hi:g}).",
                          f"give a plausible {key}.")
    return int(v) if integer else float(v)


def _eviction(spec: Any, field_name: str) -> Distribution | None:
    if spec is None or (isinstance(spec, str) and spec.lower() == "none"):
        return None
    m = _require_mapping(spec, field_name, "{time_to_eviction: {dist: exponential, mean: 6}}")
    _check_keys(m, ("time_to_eviction", "source", "assumption"), field_name)
    return parse_distribution(m.get("time_to_eviction"), f"{field_name}.time_to_eviction",
                              allow_none=True)


def _parse_slot(raw: Any, i: int, catalog: Catalog, pool_eviction: Mapping[str, Any]) -> SlotClass:
    where = f"slots[{i}]"
    m = _require_mapping(raw, where, "{gpu: A100-SXM4-80GB, count: 32}")
    _check_keys(m, SLOT_KEYS, where)
    spec = catalog.get(m.get("gpu", ""), field=f"{where}.gpu")
    count = _num(m, "count", where, integer=True, hi=10_000_000)
    owner = str(m.get("owner", "shared"))
    if not owner.strip():
        raise ConfigError(f"{where}.owner", owner, "is empty.", "use `shared` or the owning group's name.")
    gpu_mem = _num(m, "gpu_memory_gb", where, default=spec.memory_gb, hi=4096)
    if gpu_mem > spec.memory_gb * 1.001:
        raise ConfigError(f"{where}.gpu_memory_gb", gpu_mem,
                          f"is more than the {spec.name}'s {spec.memory_gb:g} GB.",
                          "give the usable memory, at most the datasheet figure.")
    if "eviction" in m:
        tte = _eviction(m["eviction"], f"{where}.eviction")
        specified = True
    else:
        klass = "shared" if owner == "shared" else "owned"
        specified = klass in pool_eviction
        tte = _eviction(pool_eviction.get(klass), f"eviction.{klass}") if specified else None
    servers = _num(m, "servers", where, default=None, integer=True, hi=1_000_000)
    return SlotClass(
        label=str(m.get("label") or (spec.name if owner == "shared" else f"{spec.name}@{owner}")),
        gpu=spec.name, count=count, owner=owner, capability=spec.capability,
        gpu_memory_gb=gpu_mem,
        cpus=_num(m, "cpus", where, default=DEFAULT_SLOT_CPUS, integer=True, hi=4096),
        memory_gb=_num(m, "memory_gb", where, default=DEFAULT_SLOT_MEMORY_GB, hi=65536),
        disk_gb=_num(m, "disk_gb", where, default=DEFAULT_SLOT_DISK_GB, hi=10_000_000),
        time_to_eviction=tte, eviction_specified=specified, servers=servers,
        source=str(m.get("source", "")),
    )


def _parse_tier(raw: Any, i: int) -> Tier:
    where = f"tiers[{i}]"
    m = _require_mapping(raw, where, "{name: short, max_hours: 12, per_user_share: 0.667}")
    _check_keys(m, TIER_KEYS, where)
    name = m.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}.name", name, "must be a non-empty string.", "name the tier, e.g. short.")
    share = _num(m, "per_user_share", where, default=None, hi=1.0)
    count = _num(m, "per_user_gpus", where, default=None, integer=True, hi=10_000_000)
    if share is not None and count is not None:
        raise ConfigError(f"{where}.per_user_share", share,
                          "and per_user_gpus are both set; a tier has one per-user limit.",
                          "keep one of per_user_share (a fraction of the pool's GPUs) or per_user_gpus.")
    default = m.get("default", False)
    if not isinstance(default, bool):
        raise ConfigError(f"{where}.default", default, "must be true or false.", "write default: true.")
    max_hours = _num(m, "max_hours", where, hi=100_000)
    expected = _num(m, "expected_hours", where, default=None, hi=max_hours)
    return Tier(name=name, max_hours=max_hours, per_user_share=share, per_user_gpus=count,
                default=default, expected_hours=expected, source=str(m.get("source", "")))


def pool_from_dict(raw: Any, *, catalog: Catalog | None = None, source: str = "pool") -> Pool:
    """A validated Pool from a mapping with the keys of a pool file."""
    catalog = catalog or load_catalog()
    try:
        return _pool_from_dict(raw, catalog)
    except ConfigError as exc:
        raise exc.with_source(source) from None


def _pool_from_dict(raw: Any, catalog: Catalog) -> Pool:
    m = _require_mapping(raw, "pool", "{name: mypool, slots: [{gpu: L40, count: 8}]}")
    _check_keys(m, POOL_KEYS, "")
    name = m.get("name", "inline")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("name", name, "must be a non-empty string.", "name the pool.")
    eviction = m.get("eviction") or {}
    _require_mapping(eviction, "eviction", "{owned: {time_to_eviction: {dist: exponential, mean: 8}}}")
    for k in eviction:
        if k not in ("shared", "owned"):
            raise ConfigError(f"eviction.{k}", eviction[k], "is not a slot class.",
                              "use `shared` or `owned` (or set `eviction` on a slot).",
                              suggestions=nearest(str(k), ("shared", "owned")))
    slots_raw = m.get("slots")
    if not isinstance(slots_raw, list) or not slots_raw:
        raise ConfigError("slots", slots_raw, "must be a non-empty list of GPU slot classes.",
                          "write slots: [{gpu: A100-SXM4-80GB, count: 32}].")
    slots = tuple(_parse_slot(s, i, catalog, eviction) for i, s in enumerate(slots_raw))
    labels = [s.label for s in slots]
    for i, lab in enumerate(labels):
        if lab in labels[:i]:
            raise ConfigError(f"slots[{i}].label", lab, "repeats the label of an earlier slot class.",
                              "give each slot class a distinct `label` (or merge the two entries).")
    tiers_raw = m.get("tiers") or []
    if not isinstance(tiers_raw, list):
        raise ConfigError("tiers", tiers_raw, "must be a list.", "write tiers: [{name: short, max_hours: 12}].")
    tiers = tuple(_parse_tier(t, i) for i, t in enumerate(tiers_raw))
    tier_names = [t.name.lower() for t in tiers]
    for i, n in enumerate(tier_names):
        if n in tier_names[:i]:
            raise ConfigError(f"tiers[{i}].name", tiers[i].name, "repeats a tier name.", "name each tier once.")
    if sum(t.default for t in tiers) > 1:
        raise ConfigError("tiers", [t.name for t in tiers if t.default], "more than one tier is the default.",
                          "mark exactly one tier `default: true`.")
    cpu = None
    if m.get("cpu_slots") is not None:
        c = _require_mapping(m["cpu_slots"], "cpu_slots", "{count: 1000, memory_gb: 4}")
        _check_keys(c, ("count", "memory_gb", "max_hours", "source"), "cpu_slots")
        cpu = CpuSlots(count=_num(c, "count", "cpu_slots", integer=True, hi=100_000_000),
                       memory_gb=_num(c, "memory_gb", "cpu_slots", default=4.0, hi=65536),
                       max_hours=_num(c, "max_hours", "cpu_slots", default=None, hi=100_000),
                       source=str(c.get("source", "")))
    rules = []
    for i, r in enumerate(m.get("data_rules") or []):
        rm = _require_mapping(r, f"data_rules[{i}]", "{max_gb: 1, method: transfer_input_files, how: ...}")
        _check_keys(rm, ("max_gb", "method", "how", "source"), f"data_rules[{i}]")
        if not rm.get("method"):
            raise ConfigError(f"data_rules[{i}].method", rm.get("method"), "is missing.", "name the method.")
        rules.append(DataRule(max_gb=_num(rm, "max_gb", f"data_rules[{i}]", default=None, hi=1e9),
                              method=str(rm["method"]), how=str(rm.get("how", "")),
                              source=str(rm.get("source", ""))))
    limits = m.get("limits") or {}
    _require_mapping(limits, "limits", "{max_idle_jobs_per_user: 10000}")
    fit_table = m.get("fit_table") or {}
    _require_mapping(fit_table, "fit_table", "{cpus: {ideal: 1, ok: 8}}")
    scheduler = str(m.get("scheduler", "htcondor"))
    if scheduler not in ("htcondor", "slurm", "kubernetes"):
        raise ConfigError("scheduler", scheduler, "is not a supported scheduler.",
                          "use htcondor, slurm or kubernetes.",
                          suggestions=nearest(scheduler, ("htcondor", "slurm", "kubernetes")))
    assumptions = m.get("assumptions") or []
    return Pool(
        name=name, slots=slots, tiers=tiers, cpu_slots=cpu,
        description=str(m.get("description", "")), scheduler=scheduler,
        tier_attribute=m.get("tier_attribute"), data_rules=tuple(rules),
        fit_table=dict(fit_table), limits=dict(limits),
        assumptions=tuple(str(a) for a in assumptions), source=str(m.get("source", "")),
    )


def shipped_pools() -> list[str]:
    return sorted(p.stem for p in (data_dir() / "pools").glob("*.yaml"))


def read_yaml(path: Path, what: str) -> Any:
    """Parse a YAML file; a missing or malformed file is a ConfigError naming the line."""
    text = read_input_text(path, what, f"give the path of a {what} YAML file.")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(what, str(path), f"is not valid YAML{line}: {problem}.",
                          "fix the YAML syntax (indentation, colons, quotes).") from None


def load_pool(ref: str | Path | Mapping[str, Any], *, catalog: Catalog | None = None) -> Pool:
    """A pool from a shipped name (`chtc`), a YAML path, or an inline mapping."""
    if isinstance(ref, Mapping):
        return pool_from_dict(ref, catalog=catalog, source="pool")
    text = str(ref)
    path = Path(text)
    if not (text.endswith((".yaml", ".yml")) or path.exists() or "/" in text):
        shipped = shipped_pools()
        if text.lower() not in shipped:
            raise ConfigError("pool", text, f"is not a shipped pool ({', '.join(shipped)}) nor a file.",
                              "give a shipped pool name or the path of a pool YAML file.",
                              suggestions=nearest(text, shipped))
        path = data_dir() / "pools" / f"{text.lower()}.yaml"
    raw = read_yaml(path, "pool")
    return pool_from_dict(raw, catalog=catalog, source=str(path))
