"""A SimPy model of a high-throughput GPU pool (pure: no files written, nothing printed)."""

from simulator.catalog import Catalog, GpuSpec, load_catalog
from simulator.distributions import Distribution, parse_distribution
from simulator.engine import EvictionCause, run  # noqa: I001  (after scenario)
from simulator.errors import ConfigError
from simulator.pool import Pool, SlotClass, Tier, load_pool
from simulator.replicate import Replicated, replicate
from simulator.results import Results
from simulator.scenario import (
    Background,
    Checkpoint,
    CheckpointMode,
    Request,
    Scenario,
    Workload,
)

__all__ = ["Background", "Catalog", "Checkpoint", "CheckpointMode", "ConfigError", "Distribution",
           "EvictionCause", "GpuSpec", "Pool", "Replicated", "Request", "Results",
           "Scenario", "SlotClass", "Tier", "Workload", "load_catalog", "load_pool",
           "parse_distribution", "replicate", "run"]
