"""The pool: GPU slot classes, CPU slots, length tiers with per-user limits, eviction, data rules.

A pool comes from a shipped name (`chtc`, `ospool`), a YAML path, or an inline mapping (in a
scenario). `load_pool` validates every field; a bad value raises `ConfigError` naming the
field, the value and the fix. Slots owned by a research group (`owner` other than `shared`) are
reachable by other users only as evictable backfill (`+is_resumable`).

What happens at an eviction and at a tier's limit (docs/DOMAIN.md §3; defaults below, each
overridable in the pool file and in a scenario):

* `eviction.grace_seconds`: SIGTERM to the job's top-level process, SIGKILL this long after
  (600 s on every pool probed): the time a job has to save a checkpoint on SIGTERM;
* `eviction.owner_busy_fraction` (default 0): the share of the time research groups use their
  own GPUs themselves; an owned GPU not in its owners' use is free or lent as backfill
  (`simulator.owners`). 0 keeps the owners off their idle GPUs: a returning owner only evicts;
* `eviction.restart_delay_hours`: a distribution of the time from an eviction until the job can
  run again (probes: typically 30–110 s, 11–430 s seen; the shipped pools name
  `DEFAULT_RESTART_DELAY`). A pool file that names none has none, an idealised pool like its
  generous slot defaults, so that the closed forms of `simulator.theory` hold on it;
* `limits.resumable_at_tier_limit`: `vacate` (an `+is_resumable` job at its tier's limit is
  vacated and requeued, CHTC's execute points) or `hold` (held like every other job; the
  default);
* `limits.tier_clock`: `claim` (the default: the limit counts the job's time on its slot, across
  exit-85 restarts in place, as CHTC's JobRuntimeGuarantee does) or `run` (each exit-85 restart
  starts it again).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.catalog import Catalog, load_catalog
from simulator.distributions import Distribution, parse_distribution
from simulator.errors import ConfigError, nearest
from simulator.files import read_yaml
from simulator.shipped import resolve
from simulator.validate import (
    boolean,
    choice,
    join,
    known_keys,
    mapping,
    number,
    string,
    string_list,
)

POOL_KEYS = ("name", "title", "description", "scheduler", "tier_attribute", "slots", "cpu_slots", "tiers",
             "eviction", "data_rules", "fit_table", "limits", "source", "assumptions", "storage",
             "containers")
# `storage`: per-user quotas of the pool's file systems; `containers`: the default image per torch
# build (read by advisor.emit.container).
STORAGE_KEYS = ("quota_gb", "quota_files", "mounted_on_execute_points", "source")
CONTAINER_KEYS = ("image", "min_capability", "torch", "cuda", "source")
SLOT_KEYS = ("gpu", "count", "owner", "cpus", "memory_gb", "disk_gb", "gpu_memory_gb", "servers",
             "eviction", "source", "label")
TIER_KEYS = ("name", "max_hours", "expected_hours", "per_user_share", "per_user_gpus", "default",
             "source")

# Defaults for an inline pool in a scenario: generous so that they never block a match.
DEFAULT_SLOT_CPUS = 16
DEFAULT_SLOT_MEMORY_GB = 128.0
DEFAULT_SLOT_DISK_GB = 500.0
SCHEDULERS = ("htcondor", "slurm", "kubernetes")
# Where a pool file says how no slot class sits in servers: the common 8-GPU server.
DEFAULT_GPUS_PER_SERVER = 8
# What an eviction costs beyond the lost work (docs/DOMAIN.md §3, probe jobs of October 2026 on
# CHTC and the OSPool: single runs, orders of magnitude). SIGKILL follows SIGTERM by 600 s.
DEFAULT_GRACE_SECONDS = 600.0
# Eviction to restart elsewhere: typically 30-110 s, 11-430 s seen. A lognormal with median
# sqrt(30 x 110) = 57 s and sigma 0.8 puts 30-110 s at about +-0.8 sigma and 11-430 s near the 2nd
# and 99th percentiles: mean 57 e^{0.32} = 78 s, cv sqrt(e^{0.64} - 1) = 0.95.
DEFAULT_RESTART_DELAY = {"dist": "lognormal", "mean": 78.0 / 3600, "cv": 0.95,
                         "source": "docs/DOMAIN.md §3: eviction to restart typically 30-110 s, 11-430 s seen"}
EVICTION_POLICY_KEYS = ("grace_seconds", "restart_delay_hours", "owner_busy_fraction", "source")
TIER_LIMIT_ACTIONS = ("hold", "vacate")
TIER_CLOCKS = ("claim", "run")


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
class CheckpointGuidance:
    """The checkpoint interval a pool advises: between `min_hours` and `max_hours`, never more than
    `hard_max_hours` (None: no stated maximum)."""

    min_hours: float
    max_hours: float
    hard_max_hours: float | None = None
    source: str = ""

    @property
    def range_text(self) -> str:
        """`1–5 h`: how sentences name the advised range."""
        return f"{self.min_hours:g}–{self.max_hours:g} h"


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
    storage: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    containers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    title: str = ""   # how people name the pool in a sentence ("CHTC", "the OSPool")
    grace_seconds: float = DEFAULT_GRACE_SECONDS         # SIGTERM to SIGKILL at an eviction
    restart_delay: Distribution | None = None             # eviction to runnable again (hours)
    owner_busy_fraction: float = 0.0                      # owners' own use of their GPUs
    resumable_at_tier_limit: str = "hold"                 # `vacate`: requeue +is_resumable jobs
    tier_clock: str = "claim"                             # `run`: exit 85 restarts the tier clock

    @property
    def display_name(self) -> str:
        """The pool's name for sentences: its `title`, else its `name`."""
        return self.title or self.name

    @property
    def possessive(self) -> str:
        """`CHTC's`, `the OSPool's`: for guidance the pool publishes."""
        return f"{self.display_name}'s"

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

    def transfer_route(self, size_gb: float) -> DataRule | None:
        """The data rule that moves a file of `size_gb` GB: the one with the smallest `max_gb`
        that holds it (`max_gb: null` holds any size), whatever the order of the pool file;
        None when the pool has no rule for that size."""
        by_size = sorted(self.data_rules, key=lambda r: math.inf if r.max_gb is None else r.max_gb)
        for rule in by_size:
            if rule.max_gb is None or size_gb <= rule.max_gb + 1e-12:
                return rule
        return None

    def gpus_per_server(self, slot: SlotClass) -> int:
        """GPUs on one server of `slot`'s class (a multi-GPU job needs them on one server).
        Where the pool file gives no server count, assume the largest server it does describe
        (DEFAULT_GPUS_PER_SERVER when it describes none), never more than the class has."""
        if slot.servers:
            return slot.count // slot.servers
        known = [s.count // s.servers for s in self.slots if s.servers]
        return min(slot.count, max(known, default=DEFAULT_GPUS_PER_SERVER))

    @property
    def max_gpus_per_server(self) -> int:
        """The most GPUs one job can get on one server of this pool."""
        return max((self.gpus_per_server(s) for s in self.slots), default=0)

    def shortest_tier(self, hours: float) -> Tier | None:
        """The tier with the shortest limit that still lets a job run `hours`; None if none does."""
        fitting = [t for t in self.tiers if t.max_hours >= hours]
        return min(fitting, key=lambda t: t.max_hours) if fitting else None

    def user_gpu_limit(self, tier: Tier | None) -> int:
        """GPUs one user can hold at once in `tier`: its per-user limit, never more than the
        shared GPUs (all shared GPUs when there is no tier or it has no limit)."""
        limit = tier.per_user_limit(self.shared_gpus) if tier is not None else None
        return self.shared_gpus if limit is None else min(limit, self.shared_gpus)

    @property
    def checkpoint_guidance(self) -> CheckpointGuidance | None:
        """The checkpoint interval the pool's documentation advises (`limits.checkpoint_interval_hours`:
        min, max and the hard maximum), or None where the pool file gives none."""
        g = self.limits.get("checkpoint_interval_hours")
        if not isinstance(g, Mapping) or g.get("min") is None or g.get("max") is None:
            return None
        hard = g.get("hard_max")
        return CheckpointGuidance(float(g["min"]), float(g["max"]),
                                  None if hard is None else float(hard), str(g.get("source", "")))


# Every count, size and duration of a pool is a positive number: a slot class of 0 GPUs, a tier
# of 0 hours or a data rule for files of 0 GB describes nothing (declared as exclusive_minimum=0).

def _text(m: Mapping[str, Any], key: str, where: str, default: str = "") -> str:
    return string(m.get(key), join(where, key), default=default, coerce=True)


def _eviction(spec: Any, field_name: str) -> Distribution | None:
    if spec is None or (isinstance(spec, str) and spec.lower() == "none"):
        return None
    m = mapping(spec, field_name, "{time_to_eviction: {dist: exponential, mean: 6}}")
    known_keys(m, ("time_to_eviction", "source", "assumption"), field_name)
    return parse_distribution(m.get("time_to_eviction"), f"{field_name}.time_to_eviction",
                              allow_none=True)


def _parse_slot(raw: Any, i: int, catalog: Catalog, pool_eviction: Mapping[str, Any]) -> SlotClass:
    where = f"slots[{i}]"
    m = mapping(raw, where, "{gpu: A100-SXM4-80GB, count: 32}")
    known_keys(m, SLOT_KEYS, where)
    spec = catalog.get(m.get("gpu", ""), field=f"{where}.gpu")
    count = number(m.get("count"), f"{where}.count", exclusive_minimum=0, integer=True,
                   maximum=10_000_000)
    owner = string(m.get("owner"), f"{where}.owner", default="shared", allow_empty=False,
                   coerce=True)
    gpu_mem = number(m.get("gpu_memory_gb"), f"{where}.gpu_memory_gb", default=spec.memory_gb,
                     exclusive_minimum=0, maximum=4096)
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
    servers = number(m.get("servers"), f"{where}.servers", default=None, exclusive_minimum=0,
                     integer=True, maximum=1_000_000)
    return SlotClass(
        label=_text(m, "label", where) or (spec.name if owner == "shared" else f"{spec.name}@{owner}"),
        gpu=spec.name, count=count, owner=owner, capability=spec.capability,
        gpu_memory_gb=gpu_mem,
        cpus=number(m.get("cpus"), f"{where}.cpus", default=DEFAULT_SLOT_CPUS,
                    exclusive_minimum=0, integer=True, maximum=4096),
        memory_gb=number(m.get("memory_gb"), f"{where}.memory_gb", default=DEFAULT_SLOT_MEMORY_GB,
                         exclusive_minimum=0, maximum=65536),
        disk_gb=number(m.get("disk_gb"), f"{where}.disk_gb", default=DEFAULT_SLOT_DISK_GB,
                       exclusive_minimum=0, maximum=10_000_000),
        time_to_eviction=tte, eviction_specified=specified, servers=servers,
        source=_text(m, "source", where),
    )


def _parse_tier(raw: Any, i: int) -> Tier:
    where = f"tiers[{i}]"
    m = mapping(raw, where, "{name: short, max_hours: 12, per_user_share: 0.667}")
    known_keys(m, TIER_KEYS, where)
    name = string(m.get("name"), f"{where}.name", allow_empty=False)
    share = number(m.get("per_user_share"), f"{where}.per_user_share", default=None,
                   exclusive_minimum=0, maximum=1.0)
    count = number(m.get("per_user_gpus"), f"{where}.per_user_gpus", default=None,
                   exclusive_minimum=0, integer=True, maximum=10_000_000)
    if share is not None and count is not None:
        raise ConfigError(f"{where}.per_user_share", share,
                          "and per_user_gpus are both set; a tier has one per-user limit.",
                          "keep one of per_user_share (a fraction of the pool's GPUs) or per_user_gpus.")
    default = boolean(m.get("default"), f"{where}.default", default=False)
    max_hours = number(m.get("max_hours"), f"{where}.max_hours", exclusive_minimum=0,
                       maximum=100_000)
    expected = number(m.get("expected_hours"), f"{where}.expected_hours", default=None,
                      exclusive_minimum=0, maximum=max_hours)
    return Tier(name=name, max_hours=max_hours, per_user_share=share, per_user_gpus=count,
                default=default, expected_hours=expected, source=_text(m, "source", where))


def pool_from_dict(raw: Any, *, catalog: Catalog | None = None, source: str = "pool") -> Pool:
    """A validated Pool from a mapping with the keys of a pool file."""
    catalog = catalog or load_catalog()
    try:
        return _pool_from_dict(raw, catalog)
    except ConfigError as exc:
        raise exc.with_source(source) from None


def _pool_from_dict(raw: Any, catalog: Catalog) -> Pool:
    m = mapping(raw, "pool", "{name: mypool, slots: [{gpu: L40, count: 8}]}")
    known_keys(m, POOL_KEYS, "")
    name = string(m.get("name"), "name", default="inline", allow_empty=False)
    eviction = m.get("eviction") or {}
    mapping(eviction, "eviction", "{owned: {time_to_eviction: {dist: exponential, mean: 8}}}")
    for k in eviction:
        if k not in ("shared", "owned", *EVICTION_POLICY_KEYS):
            raise ConfigError(f"eviction.{k}", eviction[k], "is not a slot class or an eviction key.",
                              "use `shared` or `owned` (or set `eviction` on a slot), or one of: "
                              f"{', '.join(EVICTION_POLICY_KEYS)}.",
                              suggestions=nearest(str(k), ("shared", "owned", *EVICTION_POLICY_KEYS)))
    grace, delay = eviction_policy(eviction, "eviction", DEFAULT_GRACE_SECONDS, None)
    slots_raw = m.get("slots")
    if not isinstance(slots_raw, list) or not slots_raw:
        raise ConfigError("slots", slots_raw, "must be a non-empty list of GPU slot classes.",
                          "write slots: [{gpu: A100-SXM4-80GB, count: 32}].")
    slot_eviction = {k: v for k, v in eviction.items() if k in ("shared", "owned")}
    slots = tuple(_parse_slot(s, i, catalog, slot_eviction) for i, s in enumerate(slots_raw))
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
        c = mapping(m["cpu_slots"], "cpu_slots", "{count: 1000, memory_gb: 4}")
        known_keys(c, ("count", "memory_gb", "max_hours", "source"), "cpu_slots")
        cpu = CpuSlots(count=number(c.get("count"), "cpu_slots.count", exclusive_minimum=0,
                                    integer=True, maximum=100_000_000),
                       memory_gb=number(c.get("memory_gb"), "cpu_slots.memory_gb", default=4.0,
                                        exclusive_minimum=0, maximum=65536),
                       max_hours=number(c.get("max_hours"), "cpu_slots.max_hours", default=None,
                                        exclusive_minimum=0, maximum=100_000),
                       source=_text(c, "source", "cpu_slots"))
    rules = []
    for i, r in enumerate(m.get("data_rules") or []):
        where = f"data_rules[{i}]"
        rm = mapping(r, where, "{max_gb: 1, method: transfer_input_files, how: ...}")
        known_keys(rm, ("max_gb", "method", "how", "source"), where)
        rules.append(DataRule(max_gb=number(rm.get("max_gb"), f"{where}.max_gb", default=None,
                                            exclusive_minimum=0, maximum=1e9),
                              method=string(rm.get("method"), f"{where}.method", allow_empty=False),
                              how=_text(rm, "how", where), source=_text(rm, "source", where)))
    limits = m.get("limits") or {}
    mapping(limits, "limits", "{max_idle_jobs_per_user: 10000}")
    _check_limits(limits)
    fit_table = m.get("fit_table") or {}
    mapping(fit_table, "fit_table", "{cpus: {ideal: 1, ok: 8}}")
    scheduler = choice(m.get("scheduler"), "scheduler", SCHEDULERS, default="htcondor")
    assumptions = m.get("assumptions") or []
    tier_attribute = m.get("tier_attribute")
    return Pool(
        name=name, slots=slots, tiers=tiers, cpu_slots=cpu,
        title=_text(m, "title", ""),
        description=_text(m, "description", ""), scheduler=scheduler,
        tier_attribute=None if tier_attribute is None else string(tier_attribute, "tier_attribute"),
        data_rules=tuple(rules), fit_table=dict(fit_table), limits=dict(limits),
        assumptions=tuple(string_list(assumptions, "assumptions")), source=_text(m, "source", ""),
        storage=_named_entries(m.get("storage"), "storage", STORAGE_KEYS,
                               "{home: {quota_gb: 40, source: ...}}"),
        containers=_named_entries(m.get("containers"), "containers", CONTAINER_KEYS,
                                  "{cuda13: {image: docker://pytorch/pytorch:TAG, min_capability: 7.5}}"),
        grace_seconds=grace, restart_delay=delay,
        owner_busy_fraction=number(eviction.get("owner_busy_fraction"), "eviction.owner_busy_fraction",
                                   default=0.0, minimum=0, maximum=0.99),
        resumable_at_tier_limit=choice(limits.get("resumable_at_tier_limit"),
                                       "limits.resumable_at_tier_limit", TIER_LIMIT_ACTIONS,
                                       default="hold",
                                       fix="use vacate (an +is_resumable job at its tier's limit is "
                                       "vacated and requeued) or hold."),
        tier_clock=choice(limits.get("tier_clock"), "limits.tier_clock", TIER_CLOCKS, default="claim",
                          fix="use claim (the limit counts the time on the slot across exit-85 "
                          "restarts) or run (each restart starts it again)."),
    )


def eviction_policy(m: Mapping[str, Any], where: str, grace_default: float,
                    delay_default: Distribution | None) -> tuple[float, Distribution | None]:
    """`grace_seconds` and `restart_delay_hours` of an `eviction` mapping (a pool's or a
    scenario's), each falling back to the given default; `restart_delay_hours: none` (or 0) is
    an immediate requeue."""
    grace = number(m.get("grace_seconds"), join(where, "grace_seconds"), default=grace_default,
                   minimum=0, maximum=86_400, unit=" s")
    delay = delay_default
    if "restart_delay_hours" in m:
        spec = m["restart_delay_hours"]
        delay = None if spec == 0 else parse_distribution(spec, join(where, "restart_delay_hours"),
                                                          allow_none=True)
    return grace, delay


def _named_entries(raw: Any, where: str, keys: tuple[str, ...], example: str) -> dict[str, dict[str, Any]]:
    """`storage` / `containers`: a mapping of name to a mapping with `keys`; numbers positive,
    a container image pinned (never `:latest` or untagged)."""
    if raw is None:
        return {}
    m = mapping(raw, where, example)
    out: dict[str, dict[str, Any]] = {}
    for name, entry in m.items():
        here = f"{where}.{name}"
        e = dict(mapping(entry, here, example))
        known_keys(e, keys, here)
        for key in ("quota_gb", "quota_files", "min_capability"):
            if key in e:
                e[key] = number(e[key], f"{here}.{key}", exclusive_minimum=0, maximum=1e12)
        if "image" in e:
            image = string(e["image"], f"{here}.image", allow_empty=False)
            tail = image.rsplit("/", 1)[-1]
            if ":" not in tail or tail.endswith(":latest"):
                raise ConfigError(f"{here}.image", image, "is not pinned to a tag (untagged or :latest "
                                  "changes under running jobs).",
                                  "give a fixed tag, e.g. docker://pytorch/pytorch:2.9.1-cuda13.0-cudnn9-runtime.")
        out[str(name)] = e
    return out


def _check_limits(limits: Mapping[str, Any]) -> None:
    """The numbers of `limits` other code reads (the checkpoint guidance)."""
    guidance = limits.get("checkpoint_interval_hours")
    if guidance is None:
        return
    where = "limits.checkpoint_interval_hours"
    g = mapping(guidance, where, "{min: 1, max: 5, hard_max: 10}")
    for key in ("min", "max", "hard_max"):
        number(g.get(key), f"{where}.{key}", default=None, exclusive_minimum=0, maximum=100_000)


def load_pool(ref: str | Path | Mapping[str, Any], *, catalog: Catalog | None = None) -> Pool:
    """A pool from a shipped name (`chtc`), a YAML path, or an inline mapping."""
    if isinstance(ref, Mapping):
        return pool_from_dict(ref, catalog=catalog, source="pool")
    path = resolve("pool", ref)  # a shipped name wins over a same-named entry of the cwd
    raw = read_yaml(path, "pool")
    return pool_from_dict(raw, catalog=catalog, source=str(path))
