"""What a job event log says about each job: the record types `advisor.logs.parse` fills in and
the rest of `advisor.logs` reads (runs, holds, resources; one `ParsedLog` per file)."""

from __future__ import annotations

from dataclasses import dataclass, field

# Event numbers (HTCondor manual, job-event-log-codes).
SUBMIT, EXECUTE, EVICTED, TERMINATED, IMAGE_SIZE, SHADOW_EXCEPTION = 0, 1, 4, 5, 6, 7
ABORTED, HELD, RELEASED = 9, 12, 13
DISCONNECTED, RECONNECTED, RECONNECT_FAILED, FILE_TRANSFER = 22, 23, 24, 40

EVENT_NAMES = {
    SUBMIT: "submit", EXECUTE: "execute", EVICTED: "evicted", TERMINATED: "terminated",
    IMAGE_SIZE: "image_size", SHADOW_EXCEPTION: "shadow_exception", ABORTED: "aborted",
    HELD: "held", RELEASED: "released", DISCONNECTED: "disconnected",
    RECONNECTED: "reconnected", RECONNECT_FAILED: "reconnect_failed",
    FILE_TRANSFER: "file_transfer",
}

# An eviction followed within this many seconds by a removal or hold (with no run between)
# was caused by that removal or hold, not by the pool taking the slot back.
EVICTION_CAUSE_WINDOW_S = 300.0


@dataclass(slots=True)
class Resource:
    """One resource row: what was requested, what the slot allocated, what the job used.

    `used` is the peak for memory and disk, the lifetime average for CPUs (cores busy) and GPUs
    (GPU-seconds per second, summed over the job's GPUs).
    """

    requested: float | None = None
    allocated: float | None = None
    used: float | None = None


@dataclass(slots=True)
class Hold:
    job: str
    code: int | None
    subcode: int | None
    reason_name: str
    reason: str
    category: str
    time_s: float
    while_running: bool


@dataclass(slots=True)
class Run:
    """One execution: from a 001 event to whatever ended it."""

    start_s: float
    end_s: float | None = None
    outcome: str = "open"  # terminated, evicted, checkpointed, requeued, held, aborted,
    #                         shadow_exception, reconnect_failed, superseded, open
    host: str | None = None

    @property
    def seconds(self) -> float:
        return 0.0 if self.end_s is None else max(0.0, self.end_s - self.start_s)


@dataclass(slots=True)
class JobRecord:
    job: str
    cluster: int
    proc: int
    log: str
    submitted_s: float | None = None
    runs: list[Run] = field(default_factory=list)
    evictions: int = 0
    preemptions: int = 0  # evictions not caused by a removal or a hold
    checkpointed_evictions: int = 0
    holds: list[Hold] = field(default_factory=list)
    releases: int = 0
    aborted: bool = False
    abort_reason: str | None = None
    disconnections: int = 0
    reconnections: int = 0
    reconnect_failures: int = 0
    shadow_exceptions: int = 0
    shadow_message: str | None = None
    terminated: bool = False
    exit_code: int | None = None
    exit_signal: int | None = None
    transfer_in_s: float = 0.0
    transfer_out_s: float = 0.0
    cpus: Resource = field(default_factory=Resource)
    memory_mb: Resource = field(default_factory=Resource)
    disk_kb: Resource = field(default_factory=Resource)
    gpus: Resource = field(default_factory=Resource)
    gpus_memory_mb: Resource = field(default_factory=Resource)
    assigned_gpus: str | None = None
    last_event_s: float | None = None
    _evicted_at: float | None = None
    _transfer_started: float | None = None

    @property
    def executions(self) -> int:
        return len(self.runs)

    @property
    def open_run(self) -> Run | None:
        if self.runs and self.runs[-1].end_s is None:
            return self.runs[-1]
        return None

    @property
    def wall_seconds(self) -> float:
        return sum(r.seconds for r in self.runs)

    @property
    def good_seconds(self) -> float:
        """Time in runs whose work was kept: ended by termination or by a checkpoint."""
        return sum(r.seconds for r in self.runs if r.outcome in ("terminated", "checkpointed"))

    @property
    def state(self) -> str:
        if self.terminated:
            return "completed"
        if self.aborted:
            return "removed"
        if self.holds and self.releases < len(self.holds):
            return "held"
        if self.open_run is not None:
            return "running"
        return "idle"


@dataclass
class ParsedLog:
    """What one log file gave: its jobs in order of first appearance, and any fault."""

    path: str
    jobs: dict[tuple[int, int], JobRecord]
    events: int = 0
    event_counts: dict[int, int] = field(default_factory=dict)
    bytes: int = 0
    date_format: str = "unknown"  # "iso" or "MM/DD (no year)"
    first_event_s: float | None = None
    last_event_s: float | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)  # the log reads, but something is off
