"""A scenario: the pool, the workload under study, other users' jobs, and how to measure.

`Scenario.from_dict(d)` / `Scenario.from_yaml(path)` validate every key once (a bad value
raises `ConfigError` naming the field, the value and the fix, with the nearest valid key as a
suggestion); the result is frozen. `to_dict()` gives back the mapping it came from and
`with_overrides({"workload.tasks": 500, "pool.slots[0].count": 16})` builds a what-if variant
by editing that mapping and validating it again.

Keys (docs/DESIGN.md §4.3), times in hours unless the name says otherwise::

    name, description, seed, replications, warmup_hours, horizon_hours
    pool: chtc | path.yaml | {name, slots, tiers, ...}
    eviction: {time_to_eviction: DIST | none,        # slots whose pool class names none
               grace_seconds, restart_delay_hours: DIST | none}   # default: the pool's
    owner_busy_hours: DIST | none     # how long an owner keeps an owned GPU (none: 0)
    owner_busy_fraction: F            # owners' own use of their GPUs (default the pool's;
                                      # sets owner_busy_hours: simulator.owners)
    fair_share: {half_life_hours: 24} | none          # none: first come, first served
    workload:
      tasks, start_hours, arrival: DIST (absent: all at start_hours), work_hours: DIST,
      reference_gpu, speed: {GPU: factor}, user,
      request: {gpus, cpus, memory_gb, gpu_memory_gb, disk_gb, min_capability,
                job_length, is_resumable, requires_backfill, cpu_ok, cpu_hours},
      checkpoint: {mode: periodic | exit | none, interval_minutes, cost_seconds,
                   restart_seconds, transfer_seconds, size_gb, restart_gap_seconds,
                   saves_on_sigterm}
    background: one mapping or a list of them:
      {name, users, arrival: DIST, work_hours: DIST, request: {...}}

HTCondor's run-time behaviour (docs/DOMAIN.md §3, probe jobs of October 2026; each default
below names that source):

* `checkpoint.restart_gap_seconds` (default 3.5): an exit 85 restarts the job in place, in the
  same sandbox on the same host, 0-7 s later, with no new match;
* `checkpoint.transfer_seconds`: moving the checkpoint files at that restart and after an
  eviction; default from `checkpoint.size_gb` (about 1 s per 100 MB, 5 s per GB: 0.56 s +
  4.44 s/GB), 0 when neither is given. `restart_seconds` is the program's own reload;
* `checkpoint.saves_on_sigterm` (default false): the program saves a checkpoint when evicted
  (SIGTERM) *and* the submit file keeps it (`when_to_transfer_output = ON_EXIT_OR_EVICT` with the
  checkpoint directory in `transfer_output_files`); otherwise the save on SIGTERM is lost and
  the job restarts from its last planned checkpoint;
* `eviction.grace_seconds` (default the pool's, 600): SIGTERM to SIGKILL; a save on SIGTERM
  longer than this is killed and lost;
* `eviction.restart_delay_hours` (default the pool's; the shipped pools': lognormal, mean 78 s,
  cv 0.95; a pool file naming none: none): eviction to runnable again (typically 30-110 s,
  11-430 s seen);
* `workload.request.requires_backfill` (`requirements = TARGET.BackfillSlot =?= true`): only
  owned GPUs, as backfill; needs `is_resumable`, which alone makes a job *eligible* for backfill
  without forcing it there;
* `pool.limits.resumable_at_tier_limit`: what happens to an `is_resumable` job at its tier's
  limit (CHTC: `vacate`, requeued; else `hold`).

Speed factors: a GPU's factor is its throughput relative to `workload.reference_gpu`; by
default the catalog's typical-training-mix ratio (`Catalog.training_speed`: a share
`catalog.TYPICAL_COMPUTE_SHARE` of a step scales with TF32 compute, the rest with memory
bandwidth; `catalog.describe_speed_model()` says it in words), overridden per GPU by
`workload.speed`. Background work is expressed on the same reference GPU.
"""

from __future__ import annotations

import copy
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.catalog import load_catalog
from simulator.distributions import Distribution, parse_distribution
from simulator.errors import ConfigError
from simulator.files import read_yaml
from simulator.overrides import set_key
from simulator.pool import Pool, SlotClass, eviction_policy, load_pool
from simulator.request import Request
from simulator.validate import REQUIRED, boolean, choice, join, known_keys, mapping, number, string

SCENARIO_KEYS = ("name", "description", "seed", "replications", "warmup_hours", "horizon_hours",
                 "pool", "eviction", "owner_busy_hours", "owner_busy_fraction", "fair_share", "workload", "background",
                 "source")
WORKLOAD_KEYS = ("name", "user", "tasks", "start_hours", "arrival", "work_hours", "reference_gpu",
                 "speed", "request", "checkpoint", "source")
BACKGROUND_KEYS = ("name", "users", "arrival", "work_hours", "request", "source")
REQUEST_KEYS = ("gpus", "cpus", "memory_gb", "gpu_memory_gb", "disk_gb", "min_capability",
                "job_length", "is_resumable", "requires_backfill", "cpu_ok", "cpu_hours")
CHECKPOINT_KEYS = ("mode", "interval_minutes", "cost_seconds", "restart_seconds",
                   "transfer_seconds", "size_gb", "restart_gap_seconds", "saves_on_sigterm",
                   "source")
EVICTION_KEYS = ("time_to_eviction", "grace_seconds", "restart_delay_hours", "source", "assumption")
# docs/DOMAIN.md §3 (probe jobs, October 2026): an exit 85 restarts in place 0-7 s later (the
# midpoint is the default); a 100 MB checkpoint adds about 1 s to the restart, 1 GB about 5 s
# (a line through both: 0.56 s + 4.44 s per GB).
DEFAULT_RESTART_GAP_SECONDS = 3.5
TRANSFER_FIXED_SECONDS = 5.0 / 9.0
TRANSFER_SECONDS_PER_GB = 40.0 / 9.0
FAIR_SHARE_KEYS = ("half_life_hours",)
DEFAULT_HALF_LIFE_HOURS = 24.0  # HTCondor PRIORITY_HALFLIFE default: 86400 s
MAX_REPLICATIONS = 100_000      # the most replications a scenario (or `simulate -r`) may ask for


class CheckpointMode(enum.Enum):
    """How a job saves its progress.

    NONE: never; an interruption loses everything done in that run.
    PERIODIC: in place, every `interval` of useful work the job writes a checkpoint (cost
      `cost`) and carries on (Daly's model).
    EXIT: exit-driven (HTCondor `checkpoint_exit_code`): after `interval` of useful work the job
      writes a checkpoint and exits 85; HTCondor restarts it in place (docs/DOMAIN.md §3; the
      engine's docstring says how the restart and the tier clock are modelled).
    """

    NONE = "none"
    PERIODIC = "periodic"
    EXIT = "exit"


@dataclass(frozen=True)
class Checkpoint:
    mode: CheckpointMode = CheckpointMode.NONE
    interval_hours: float | None = None
    cost_hours: float = 0.0
    restart_hours: float = 0.0  # restart plus checkpoint transfer, paid on every start but the first
    transfer_hours: float = 0.0     # the checkpoint transfer alone (part of restart_hours)
    restart_gap_hours: float = DEFAULT_RESTART_GAP_SECONDS / 3600  # exit 85 to the in-place restart
    saves_on_sigterm: bool = False  # a save on an eviction's SIGTERM survives (ON_EXIT_OR_EVICT)


NO_CHECKPOINT = Checkpoint()


@dataclass(frozen=True)
class Workload:
    tasks: int
    work_hours: Distribution
    arrival: Distribution | None = None
    start_hours: float = 0.0
    reference_gpu: str = ""
    speed: tuple[tuple[str, float], ...] = ()
    request: Request = Request.from_gb()
    checkpoint: Checkpoint = NO_CHECKPOINT
    name: str = "workload"
    user: str = "you"


@dataclass(frozen=True)
class Background:
    arrival: Distribution
    work_hours: Distribution
    users: int = 1
    request: Request = Request.from_gb()
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
    owner_busy_fraction: float = 0.0             # the pool's unless the scenario says
    fair_share_half_life_hours: float | None = DEFAULT_HALF_LIFE_HOURS
    grace_seconds: float = 600.0                 # the pool's unless the scenario's eviction says
    restart_delay: Distribution | None = None    # eviction to runnable again (hours); None: at once
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
                d["pool"] = pool_mapping(d.get("pool", "chtc"))
            set_key(d, str(key), copy.deepcopy(value))
        return Scenario.from_dict(d, source=f"{self.name} with overrides")

    # --- derived ------------------------------------------------------------------------
    def slot_eviction(self, slot: SlotClass) -> Distribution | None:
        """Time to eviction on `slot`: the pool's own figure, else the scenario's `eviction`."""
        if slot.eviction_specified or not self.eviction_given:
            return slot.time_to_eviction
        return self.eviction

    def owner_busy(self, slot: SlotClass) -> Distribution | None:
        """How long the owners of `slot` keep a GPU they take back: `owner_busy_hours`, else
        exponential with the mean that makes their busy fraction f: B = I·f/(1−f) for idle
        periods of mean I (the slot's time to eviction); None on a shared slot, or when
        neither is set (an owner who returns leaves at once)."""
        if not slot.backfill_only:
            return None
        if self.owner_busy_hours is not None:
            return self.owner_busy_hours
        idle = self.slot_eviction(slot)
        f = self.owner_busy_fraction
        if f <= 0.0 or idle is None or not 0.0 < idle.mean < math.inf:
            return None
        return Distribution("exponential", (("mean", idle.mean * f / (1.0 - f)),))

    @property
    def grace_hours(self) -> float:
        return self.grace_seconds / 3600.0

    def speed(self, gpu: str) -> float:
        return dict(self.speed_factors)[gpu]


# --- parsing helpers ------------------------------------------------------------------------

# Every field is checked by simulator.validate. `_request` reads the request's fields through
# these short forms: `positive` declares that zero is refused (exclusive_minimum=0), else zero
# is allowed (minimum=0).
_mapping = mapping
_keys = known_keys


def _number(m: Mapping[str, Any], key: str, where: str, default: Any, *, integer: bool = False,
            positive: bool = False, hi: float = math.inf) -> Any:
    return number(m.get(key), join(where, key), default=REQUIRED if default is ... else default,
                  integer=integer, maximum=None if hi == math.inf else hi,
                  minimum=None if positive else 0, exclusive_minimum=0 if positive else None)


def _bool(m: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    return boolean(m.get(key), join(where, key), default=default)


def _request(raw: Any, where: str, pool: Pool) -> Request:
    m = _mapping(raw if raw is not None else {}, where, "{gpus: 1, cpus: 1, memory_gb: 8}")
    _keys(m, REQUEST_KEYS, where)
    job_length = m.get("job_length")
    if job_length is not None:
        job_length = pool.tier(str(job_length), f"{where}.job_length").name
    req = Request.from_gb(
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
        requires_backfill=_bool(m, "requires_backfill", where, False),
    )
    if req.requires_backfill and not req.is_resumable:
        raise ConfigError(f"{where}.requires_backfill", True, "needs is_resumable: backfill slots "
                          "match only +is_resumable jobs.", "add is_resumable: true, or drop "
                          "requires_backfill to let the job run on shared GPUs.")
    if req.requires_backfill and not any(s.backfill_only for s in pool.slots):
        raise ConfigError(f"{where}.requires_backfill", True, f"pool {pool.name!r} has no backfill "
                          "(owned) GPUs.", "drop requires_backfill, or add slots with an owner.")
    if req.cpu_ok and req.cpu_hours is None:
        raise ConfigError(f"{where}.cpu_hours", None, "is missing: cpu_ok needs the task's CPU time.",
                          "add cpu_hours (core-hours of a mean-sized task on one CPU core).")
    return req


def _checkpoint(raw: Any, where: str) -> Checkpoint:
    if raw is None or (isinstance(raw, str) and raw.strip().lower() == "none"):
        return NO_CHECKPOINT
    m = mapping(raw, where, "{interval_minutes: 60, cost_seconds: 30, restart_seconds: 120}")
    known_keys(m, CHECKPOINT_KEYS, where)
    interval = number(m.get("interval_minutes"), f"{where}.interval_minutes", default=None,
                      exclusive_minimum=0, maximum=1e7)
    mode = CheckpointMode(choice(
        m.get("mode"), f"{where}.mode", [x.value for x in CheckpointMode],
        default="periodic" if interval is not None else "none",
        fix="use periodic (write and carry on) or exit (write, exit, be queued again)."))
    if mode is not CheckpointMode.NONE and interval is None:
        raise ConfigError(f"{where}.interval_minutes", None, f"is missing: mode {mode.value} needs it.",
                          "add interval_minutes, e.g. 60.")
    # seconds a checkpoint costs: zero is meaningful (a free checkpoint, an instant restart)
    cost, restart = (number(m.get(k), f"{where}.{k}", default=0.0, minimum=0, maximum=1e7)
                     for k in ("cost_seconds", "restart_seconds"))
    size = number(m.get("size_gb"), f"{where}.size_gb", default=None, minimum=0, maximum=1e5)
    transfer = number(m.get("transfer_seconds"), f"{where}.transfer_seconds",
                      default=0.0 if size is None else transfer_seconds(size), minimum=0,
                      maximum=1e7)
    gap = number(m.get("restart_gap_seconds"), f"{where}.restart_gap_seconds",
                 default=DEFAULT_RESTART_GAP_SECONDS, minimum=0, maximum=1e5)
    return Checkpoint(mode=mode,
                      interval_hours=None if mode is CheckpointMode.NONE or interval is None
                      else interval / 60.0,
                      cost_hours=cost / 3600.0,
                      restart_hours=(restart + transfer) / 3600.0,
                      transfer_hours=transfer / 3600.0,
                      restart_gap_hours=gap / 3600.0,
                      saves_on_sigterm=boolean(m.get("saves_on_sigterm"), f"{where}.saves_on_sigterm",
                                               default=False))


def transfer_seconds(size_gb: float) -> float:
    """Seconds a checkpoint of `size_gb` adds to a restart (docs/DOMAIN.md §3: about 1 s per
    100 MB, 5 s per GB)."""
    return TRANSFER_FIXED_SECONDS + TRANSFER_SECONDS_PER_GB * size_gb


def pool_mapping(ref: Any) -> dict[str, Any]:
    """The raw mapping of a pool given by name, path or mapping (to override `pool.` keys)."""
    if isinstance(ref, Mapping):
        return copy.deepcopy(dict(ref))
    from simulator.shipped import resolve
    text = str(ref if ref is not None else "chtc")
    return dict(mapping(read_yaml(resolve("pool", text), "pool"), "pool",
                        "a pool file: {name: mypool, slots: [{gpu: L40, count: 8}]}"))


def _parse(raw: Any, source: str) -> Scenario:
    m = mapping(raw, "scenario", "{pool: chtc, workload: {tasks: 10, work_hours: 2}}")
    known_keys(m, SCENARIO_KEYS, "")
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
    grace, delay = pool.grace_seconds, pool.restart_delay
    if "eviction" in m:
        given = True
        ev = m["eviction"]
        if not (ev is None or (isinstance(ev, str) and ev.strip().lower() == "none")):
            em = mapping(ev, "eviction", "{time_to_eviction: {dist: exponential, mean: 6}}")
            known_keys(em, EVICTION_KEYS, "eviction")
            eviction = parse_distribution(em.get("time_to_eviction"), "eviction.time_to_eviction",
                                          allow_none=True)
            grace, delay = eviction_policy(em, "eviction", grace, delay)

    half_life: float | None = DEFAULT_HALF_LIFE_HOURS
    if "fair_share" in m:
        fs = m["fair_share"]
        if fs is None or fs is False or (isinstance(fs, str) and fs.strip().lower() == "none"):
            half_life = None
        else:
            fm = mapping(fs, "fair_share", "{half_life_hours: 24}")
            known_keys(fm, FAIR_SHARE_KEYS, "fair_share")
            half_life = number(fm.get("half_life_hours"), "fair_share.half_life_hours",
                               default=DEFAULT_HALF_LIFE_HOURS, exclusive_minimum=0)

    w = mapping(m.get("workload"), "workload", "{tasks: 100, work_hours: {dist: fixed, value: 3}}")
    known_keys(w, WORKLOAD_KEYS, "workload")
    ref_gpu = catalog.get(w["reference_gpu"], "workload.reference_gpu").name \
        if w.get("reference_gpu") is not None else catalog.reference.name
    overrides: dict[str, float] = {}
    speed_raw = w.get("speed") or {}
    mapping(speed_raw, "workload.speed", "{L40: 0.9}")
    for gpu in speed_raw:
        name = catalog.get(str(gpu), f"workload.speed.{gpu}").name
        overrides[name] = number(speed_raw[gpu], f"workload.speed.{gpu}", exclusive_minimum=0,
                                 maximum=1e4)
    workload = Workload(
        tasks=number(w.get("tasks"), "workload.tasks", exclusive_minimum=0, integer=True,
                     maximum=1e8),
        work_hours=_dist(w.get("work_hours"), "workload.work_hours"),
        arrival=parse_distribution(w.get("arrival"), "workload.arrival", allow_none=True),
        start_hours=number(w.get("start_hours"), "workload.start_hours", default=0.0, minimum=0,
                           maximum=1e7),
        reference_gpu=ref_gpu,
        speed=tuple(sorted(overrides.items())),
        request=_request(w.get("request"), "workload.request", pool),
        checkpoint=_checkpoint(w.get("checkpoint"), "workload.checkpoint"),
        name=string(w.get("name"), "workload.name", default="workload", coerce=True),
        user=string(w.get("user"), "workload.user", default="you", coerce=True),
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
        bm = mapping(b, where, "{arrival: {dist: exponential, mean: 0.05}, work_hours: 6}")
        known_keys(bm, BACKGROUND_KEYS, where)
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
            users=number(bm.get("users"), f"{where}.users", default=1, exclusive_minimum=0,
                         integer=True, maximum=100_000),
            request=req, name=string(bm.get("name"), f"{where}.name", coerce=True,
                                     default=f"background{i}" if i else "background")))

    warmup = number(m.get("warmup_hours"), "warmup_hours", default=0.0, minimum=0, maximum=1e8)
    horizon = number(m.get("horizon_hours"), "horizon_hours", default=None, exclusive_minimum=0,
                     maximum=1e9)
    if horizon is not None and horizon <= warmup:
        raise ConfigError("horizon_hours", horizon, f"must be later than warmup_hours ({warmup:g}).",
                          "raise horizon_hours or lower warmup_hours.")
    seed = number(m.get("seed"), "seed", default=1, minimum=0, integer=True)
    scenario = Scenario(
        pool=pool, workload=workload, background=tuple(backgrounds), eviction=eviction,
        eviction_given=given, fair_share_half_life_hours=half_life, seed=seed,
        grace_seconds=grace, restart_delay=delay,
        owner_busy_hours=parse_distribution(m.get("owner_busy_hours"), "owner_busy_hours",
                                            allow_none=True),
        owner_busy_fraction=_owner_fraction(m, pool),
        replications=number(m.get("replications"), "replications", default=20,
                            exclusive_minimum=0, integer=True, maximum=MAX_REPLICATIONS),
        warmup_hours=warmup, horizon_hours=horizon,
        name=string(m.get("name"), "name", default="scenario", coerce=True),
        description=string(m.get("description"), "description", default="", multiline=True,
                           coerce=True),
        speed_factors=tuple(sorted(speeds.items())),
        raw=copy.deepcopy(dict(m)),
    )
    from simulator.matchmaking import check_matchable
    check_matchable(scenario)
    return scenario


def _owner_fraction(m: Mapping[str, Any], pool: Pool) -> float:
    f = number(m.get("owner_busy_fraction"), "owner_busy_fraction",
               default=pool.owner_busy_fraction, minimum=0, maximum=0.99)
    if m.get("owner_busy_fraction") is not None and m.get("owner_busy_hours") is not None:
        raise ConfigError("owner_busy_fraction", f, "and owner_busy_hours are both set; the "
                          "fraction sets the owners' busy periods from their idle ones.",
                          "keep one of them.")
    return float(f)


def _dist(spec: Any, where: str) -> Distribution:
    if spec is None:
        raise ConfigError(where, None, "is missing.", "add e.g. {dist: fixed, value: 3.0} (hours).")
    d = parse_distribution(spec, where)
    assert d is not None
    return d

