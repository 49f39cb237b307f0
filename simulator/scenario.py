"""A scenario: the pool, the workload under study, other users' jobs, and how to measure.

`Scenario.from_dict(d)` / `Scenario.from_yaml(path)` validate every key once (a bad value
raises `ConfigError` naming the field, the value and the fix, with the nearest valid key as a
suggestion); the result is frozen. `to_dict()` gives back the mapping it came from and
`with_overrides({"workload.tasks": 500, "pool.slots[0].count": 16})` builds a what-if variant
by editing that mapping and validating it again.

Keys (DESIGN §4.3), times in hours unless the name says otherwise::

    name, description, seed, replications, warmup_hours, horizon_hours
    pool: chtc | path.yaml | {name, slots, tiers, ...}
    eviction: {time_to_eviction: DIST | none}        # slots whose pool class names none
    owner_busy_hours: DIST | none     # how long a returning owner keeps an owned GPU (none: 0)
    fair_share: {half_life_hours: 24} | none          # none: first come, first served
    workload:
      tasks, start_hours, arrival: DIST (absent: all at start_hours), work_hours: DIST,
      reference_gpu, speed: {GPU: factor}, user,
      request: {gpus, cpus, memory_gb, gpu_memory_gb, disk_gb, min_capability,
                job_length, is_resumable, cpu_ok, cpu_hours},
      checkpoint: {mode: periodic | exit | none, interval_minutes, cost_seconds,
                   restart_seconds, transfer_seconds}
    background: one mapping or a list of them:
      {name, users, arrival: DIST, work_hours: DIST, request: {...}}

Speed factors: a GPU's factor is its throughput relative to `workload.reference_gpu`; by
default the catalog's typical-training-mix ratio (`Catalog.training_speed`: half peak TF32
compute, half memory bandwidth), overridden per GPU by
`workload.speed`. Background work is expressed on the same reference GPU.
"""

from __future__ import annotations

import copy
import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.catalog import load_catalog
from simulator.distributions import Distribution, parse_distribution
from simulator.errors import ConfigError, nearest
from simulator.pool import Pool, SlotClass, load_pool, read_yaml

SCENARIO_KEYS = ("name", "description", "seed", "replications", "warmup_hours", "horizon_hours",
                 "pool", "eviction", "owner_busy_hours", "fair_share", "workload", "background",
                 "source")
WORKLOAD_KEYS = ("name", "user", "tasks", "start_hours", "arrival", "work_hours", "reference_gpu",
                 "speed", "request", "checkpoint", "source")
BACKGROUND_KEYS = ("name", "users", "arrival", "work_hours", "request", "source")
REQUEST_KEYS = ("gpus", "cpus", "memory_gb", "gpu_memory_gb", "disk_gb", "min_capability",
                "job_length", "is_resumable", "cpu_ok", "cpu_hours")
CHECKPOINT_KEYS = ("mode", "interval_minutes", "cost_seconds", "restart_seconds",
                   "transfer_seconds", "source")
EVICTION_KEYS = ("time_to_eviction", "source", "assumption")
FAIR_SHARE_KEYS = ("half_life_hours",)
DEFAULT_HALF_LIFE_HOURS = 24.0  # HTCondor PRIORITY_HALFLIFE default: 86400 s


class CheckpointMode(enum.Enum):
    """How a job saves its progress.

    NONE: never; an interruption loses everything done in that run.
    PERIODIC: in place, every `interval` of useful work the job writes a checkpoint (cost
      `cost`) and carries on (Daly's model).
    EXIT: exit-driven (HTCondor `checkpoint_exit_code`): after `interval` of useful work the job
      writes a checkpoint, exits and is queued again; it must be matched again and pays the
      restart cost on its next start. Each run is short, so length tiers do not bite.
    """

    NONE = "none"
    PERIODIC = "periodic"
    EXIT = "exit"


@dataclass(frozen=True)
class Request:
    """What one job asks for (HTCondor submit-file vocabulary)."""

    gpus: int = 1
    cpus: int = 1
    memory_gb: float = 1.0
    gpu_memory_gb: float = 0.0
    disk_gb: float = 0.0
    min_capability: float = 0.0
    job_length: str | None = None
    is_resumable: bool = False
    cpu_ok: bool = False
    cpu_hours: float | None = None  # core-hours of a mean-sized task on one CPU core


@dataclass(frozen=True)
class Checkpoint:
    mode: CheckpointMode = CheckpointMode.NONE
    interval_hours: float | None = None
    cost_hours: float = 0.0
    restart_hours: float = 0.0  # restart plus checkpoint transfer, paid on every start but the first


NO_CHECKPOINT = Checkpoint()


@dataclass(frozen=True)
class Workload:
    tasks: int
    work_hours: Distribution
    arrival: Distribution | None = None
    start_hours: float = 0.0
    reference_gpu: str = ""
    speed: tuple[tuple[str, float], ...] = ()
    request: Request = Request()
    checkpoint: Checkpoint = NO_CHECKPOINT
    name: str = "workload"
    user: str = "you"


@dataclass(frozen=True)
class Background:
    arrival: Distribution
    work_hours: Distribution
    users: int = 1
    request: Request = Request()
    name: str = "background"


@dataclass(frozen=True)
class Scenario:
    """A validated, frozen scenario. Build it with `from_dict` or `from_yaml`."""

    pool: Pool
    workload: Workload
    background: tuple[Background, ...] = ()
    eviction: Distribution | None = None
    eviction_given: bool = False
    owner_busy_hours: Distribution | None = None
    fair_share_half_life_hours: float | None = DEFAULT_HALF_LIFE_HOURS
    seed: int = 1
    replications: int = 20
    warmup_hours: float = 0.0
    horizon_hours: float | None = None
    name: str = "scenario"
    description: str = ""
    speed_factors: tuple[tuple[str, float], ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: Any, *, source: str = "scenario") -> Scenario:
        try:
            return _parse(raw, source)
        except ConfigError as exc:
            raise exc.with_source(source) from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> Scenario:
        raw = read_yaml(Path(path), "scenario")
        if isinstance(raw, Mapping) and isinstance(raw.get("pool"), str):
            ref = str(raw["pool"])
            candidate = Path(path).parent / ref
            if (ref.endswith((".yaml", ".yml")) or "/" in ref) and candidate.exists():
                raw = {**raw, "pool": str(candidate)}  # a pool path relative to the scenario file
        return cls.from_dict(raw, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """The mapping this scenario was built from (a deep copy)."""
        return copy.deepcopy(dict(self.raw))

    def with_overrides(self, overrides: Mapping[str, Any]) -> Scenario:
        """A variant with dotted keys replaced: `workload.tasks`, `pool.slots[0].count`,
        `workload.checkpoint.interval_minutes`. A pool given by name is expanded to its mapping
        first when a `pool.` key is overridden."""
        d = self.to_dict()
        for key, value in overrides.items():
            if str(key).startswith("pool.") and not isinstance(d.get("pool"), Mapping):
                d["pool"] = _pool_mapping(d.get("pool", "chtc"))
            _set_dotted(d, str(key), copy.deepcopy(value))
        return Scenario.from_dict(d, source=f"{self.name} with overrides")

    # --- derived ------------------------------------------------------------------------
    def slot_eviction(self, slot: SlotClass) -> Distribution | None:
        """Time to eviction on `slot`: the pool's own figure, else the scenario's `eviction`."""
        if slot.eviction_specified or not self.eviction_given:
            return slot.time_to_eviction
        return self.eviction

    def speed(self, gpu: str) -> float:
        return dict(self.speed_factors)[gpu]


# --- parsing helpers ------------------------------------------------------------------------

def _mapping(value: Any, where: str, example: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(where, value, "must be a mapping.", f"write it as e.g. {example}.")
    return value


def _keys(m: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in m:
        if key not in allowed:
            name = f"{where}.{key}" if where else str(key)
            raise ConfigError(name, m[key], "is not a known key.", f"use one of: {', '.join(allowed)}.",
                              suggestions=nearest(str(key), allowed))


def _number(m: Mapping[str, Any], key: str, where: str, default: Any, *, integer: bool = False,
            positive: bool = False, hi: float = float("inf")) -> Any:
    name = f"{where}.{key}" if where else key
    if key not in m or m[key] is None:
        if default is ...:
            raise ConfigError(name, None, "is missing.", f"add {key}.")
        return default
    v = m[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(name, v, "must be a number.", f"write {key} as a plain number.")
    if integer and int(v) != v:
        raise ConfigError(name, v, "must be a whole number.", f"write {key} as e.g. 4.")
    if v < 0 or (positive and v == 0) or v > hi:
        need = "greater than zero" if positive else "zero or more"
        raise ConfigError(name, v, f"is out of range (must be {need} and at most {hi:g}).",
                          f"give a plausible {key}.")
    return int(v) if integer else float(v)


def _bool(m: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    v = m.get(key, default)
    if not isinstance(v, bool):
        raise ConfigError(f"{where}.{key}", v, "must be true or false.", f"write {key}: true.")
    return v


def _request(raw: Any, where: str, pool: Pool) -> Request:
    m = _mapping(raw if raw is not None else {}, where, "{gpus: 1, cpus: 1, memory_gb: 8}")
    _keys(m, REQUEST_KEYS, where)
    job_length = m.get("job_length")
    if job_length is not None:
        job_length = pool.tier(str(job_length), f"{where}.job_length").name
    req = Request(
        gpus=_number(m, "gpus", where, 1, integer=True, positive=True, hi=1024),
        cpus=_number(m, "cpus", where, 1, integer=True, positive=True, hi=4096),
        memory_gb=_number(m, "memory_gb", where, 1.0, hi=65536),
        gpu_memory_gb=_number(m, "gpu_memory_gb", where, 0.0, hi=4096),
        disk_gb=_number(m, "disk_gb", where, 0.0, hi=1e7),
        min_capability=_number(m, "min_capability", where, 0.0, hi=20),
        job_length=job_length,
        is_resumable=_bool(m, "is_resumable", where, False),
        cpu_ok=_bool(m, "cpu_ok", where, False),
        cpu_hours=_number(m, "cpu_hours", where, None, positive=True, hi=1e7),
    )
    if req.cpu_ok and req.cpu_hours is None:
        raise ConfigError(f"{where}.cpu_hours", None, "is missing: cpu_ok needs the task's CPU time.",
                          "add cpu_hours (core-hours of a mean-sized task on one CPU core).")
    return req


def _checkpoint(raw: Any, where: str) -> Checkpoint:
    if raw is None or (isinstance(raw, str) and raw.strip().lower() == "none"):
        return NO_CHECKPOINT
    m = _mapping(raw, where, "{interval_minutes: 60, cost_seconds: 30, restart_seconds: 120}")
    _keys(m, CHECKPOINT_KEYS, where)
    interval = _number(m, "interval_minutes", where, None, positive=True, hi=1e7)
    modes = [x.value for x in CheckpointMode]
    mode_raw = m.get("mode", "periodic" if interval is not None else "none")
    if mode_raw not in modes:
        raise ConfigError(f"{where}.mode", mode_raw, f"is not a checkpoint mode ({', '.join(modes)}).",
                          "use periodic (write and carry on) or exit (write, exit, be queued again).",
                          suggestions=nearest(str(mode_raw), modes))
    mode = CheckpointMode(mode_raw)
    if mode is not CheckpointMode.NONE and interval is None:
        raise ConfigError(f"{where}.interval_minutes", None, f"is missing: mode {mode.value} needs it.",
                          "add interval_minutes, e.g. 60.")
    restart = _number(m, "restart_seconds", where, 0.0, hi=1e7)
    transfer = _number(m, "transfer_seconds", where, 0.0, hi=1e7)
    return Checkpoint(mode=mode,
                      interval_hours=None if mode is CheckpointMode.NONE or interval is None
                      else interval / 60.0,
                      cost_hours=_number(m, "cost_seconds", where, 0.0, hi=1e7) / 3600.0,
                      restart_hours=(restart + transfer) / 3600.0)


def _pool_mapping(ref: Any) -> Any:
    """The raw mapping of a pool given by name or path (for overrides of `pool.` keys)."""
    if isinstance(ref, Mapping):
        return copy.deepcopy(dict(ref))
    from simulator.catalog import data_dir
    from simulator.pool import shipped_pools
    text = str(ref)
    path = Path(text)
    if text.lower() in shipped_pools() and not path.exists():
        path = data_dir() / "pools" / f"{text.lower()}.yaml"
    return read_yaml(path, "pool")


def _parse(raw: Any, source: str) -> Scenario:
    m = _mapping(raw, "scenario", "{pool: chtc, workload: {tasks: 10, work_hours: 2}}")
    _keys(m, SCENARIO_KEYS, "")
    catalog = load_catalog()
    pool_ref = m.get("pool", "chtc")
    try:
        pool = load_pool(pool_ref, catalog=catalog)
    except ConfigError as exc:
        if isinstance(pool_ref, Mapping) and not exc.field.startswith("pool"):
            exc.field = f"pool.{exc.field}"
            exc.source = None
            exc.args = (exc.render(),)
        raise

    eviction, given = None, False
    if "eviction" in m:
        given = True
        ev = m["eviction"]
        if not (ev is None or (isinstance(ev, str) and ev.strip().lower() == "none")):
            em = _mapping(ev, "eviction", "{time_to_eviction: {dist: exponential, mean: 6}}")
            _keys(em, EVICTION_KEYS, "eviction")
            eviction = parse_distribution(em.get("time_to_eviction"), "eviction.time_to_eviction",
                                          allow_none=True)

    half_life: float | None = DEFAULT_HALF_LIFE_HOURS
    if "fair_share" in m:
        fs = m["fair_share"]
        if fs is None or fs is False or (isinstance(fs, str) and fs.strip().lower() == "none"):
            half_life = None
        else:
            fm = _mapping(fs, "fair_share", "{half_life_hours: 24}")
            _keys(fm, FAIR_SHARE_KEYS, "fair_share")
            half_life = _number(fm, "half_life_hours", "fair_share", DEFAULT_HALF_LIFE_HOURS,
                                positive=True)

    w = _mapping(m.get("workload"), "workload", "{tasks: 100, work_hours: {dist: fixed, value: 3}}")
    _keys(w, WORKLOAD_KEYS, "workload")
    ref_gpu = catalog.get(w["reference_gpu"], "workload.reference_gpu").name \
        if w.get("reference_gpu") is not None else catalog.reference.name
    overrides: dict[str, float] = {}
    speed_raw = w.get("speed") or {}
    _mapping(speed_raw, "workload.speed", "{L40: 0.9}")
    for gpu in speed_raw:
        name = catalog.get(str(gpu), f"workload.speed.{gpu}").name
        overrides[name] = _number(speed_raw, gpu, "workload.speed", ..., positive=True, hi=1e4)
    workload = Workload(
        tasks=_number(w, "tasks", "workload", ..., integer=True, positive=True, hi=1e8),
        work_hours=_dist(w.get("work_hours"), "workload.work_hours"),
        arrival=parse_distribution(w.get("arrival"), "workload.arrival", allow_none=True),
        start_hours=_number(w, "start_hours", "workload", 0.0, hi=1e7),
        reference_gpu=ref_gpu,
        speed=tuple(sorted(overrides.items())),
        request=_request(w.get("request"), "workload.request", pool),
        checkpoint=_checkpoint(w.get("checkpoint"), "workload.checkpoint"),
        name=str(w.get("name", "workload")),
        user=str(w.get("user", "you")),
    )
    speeds = {s.gpu: overrides.get(s.gpu, catalog.training_speed(s.gpu, reference=ref_gpu))
              for s in pool.slots}

    bg_raw = m.get("background")
    if bg_raw is None:
        bg_list: list[Any] = []
    elif isinstance(bg_raw, list):
        bg_list = bg_raw
    else:
        bg_list = [bg_raw]
    backgrounds = []
    for i, b in enumerate(bg_list):
        where = "background" if not isinstance(bg_raw, list) else f"background[{i}]"
        bm = _mapping(b, where, "{arrival: {dist: exponential, mean: 0.05}, work_hours: 6}")
        _keys(bm, BACKGROUND_KEYS, where)
        if bm.get("arrival") is None:
            raise ConfigError(f"{where}.arrival", None, "is missing: background jobs need an arrival process.",
                              "add arrival: {dist: exponential, mean: 0.05} (hours between jobs).")
        req = _request(bm.get("request"), f"{where}.request", pool)
        if req.cpu_ok:
            raise ConfigError(f"{where}.request.cpu_ok", True, "is not supported for background jobs.",
                              "remove cpu_ok; background jobs use GPU slots.")
        backgrounds.append(Background(
            arrival=_dist(bm["arrival"], f"{where}.arrival"),
            work_hours=_dist(bm.get("work_hours"), f"{where}.work_hours"),
            users=_number(bm, "users", where, 1, integer=True, positive=True, hi=100_000),
            request=req, name=str(bm.get("name", f"background{i}" if i else "background"))))

    warmup = _number(m, "warmup_hours", "", 0.0, hi=1e8)
    horizon = _number(m, "horizon_hours", "", None, positive=True, hi=1e9)
    if horizon is not None and horizon <= warmup:
        raise ConfigError("horizon_hours", horizon, f"must be later than warmup_hours ({warmup:g}).",
                          "raise horizon_hours or lower warmup_hours.")
    seed = m.get("seed", 1)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError("seed", seed, "must be a whole number, zero or more.", "write seed: 1.")
    scenario = Scenario(
        pool=pool, workload=workload, background=tuple(backgrounds), eviction=eviction,
        eviction_given=given, fair_share_half_life_hours=half_life, seed=seed,
        owner_busy_hours=parse_distribution(m.get("owner_busy_hours"), "owner_busy_hours",
                                            allow_none=True),
        replications=_number(m, "replications", "", 20, integer=True, positive=True, hi=100_000),
        warmup_hours=warmup, horizon_hours=horizon,
        name=str(m.get("name", "scenario")), description=str(m.get("description", "")),
        speed_factors=tuple(sorted(speeds.items())),
        raw=copy.deepcopy(dict(m)),
    )
    from simulator.matchmaking import check_matchable
    check_matchable(scenario)
    return scenario


def _dist(spec: Any, where: str) -> Distribution:
    if spec is None:
        raise ConfigError(where, None, "is missing.", "add e.g. {dist: fixed, value: 3.0} (hours).")
    d = parse_distribution(spec, where)
    assert d is not None
    return d


_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    parts: list[str | int] = []
    for name, index in _TOKEN.findall(key):
        if index:
            parts.append(int(index))
        elif name.isdigit():
            parts.append(int(name))
        else:
            parts.append(name)
    if not parts:
        raise ConfigError("override", key, "is not a dotted key.", "write e.g. workload.tasks=500.")
    node: Any = d
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise ConfigError(key, value, f"index {part} is out of range.",
                                  "use an index of an existing list entry.")
            node = node[part]
            continue
        if not isinstance(node, dict):
            raise ConfigError(key, value, f"{part!r} is not inside a mapping.", "check the key path.")
        if node.get(part) is None or (isinstance(node.get(part), str) and not isinstance(nxt, int)):
            node[part] = {}
        node = node[part]
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ConfigError(key, value, f"index {last} is out of range.", "use an existing index.")
        node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(key, value, "does not lead to a mapping.", "check the key path.")
