"""A SimPy model of a high-throughput GPU pool (pure: no files written, nothing printed)."""

from simulator.catalog import Catalog, GpuSpec, load_catalog
from simulator.distributions import Distribution, parse_distribution
from simulator.errors import ConfigError
from simulator.pool import Pool, SlotClass, Tier, load_pool

__all__ = ["Catalog", "ConfigError", "Distribution", "GpuSpec", "Pool", "SlotClass", "Tier",
           "load_catalog", "load_pool", "parse_distribution"]
