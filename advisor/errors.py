"""The advisor's error vocabulary: the CLI maps these to exit codes.

* `InputError` (exit 2): bad usage or a bad input file; names the field, the value and the fix.
  It is the simulator's `ConfigError`, so one `except` covers both packages.
* `DomainFailure` (exit 1): the inputs were fine but the action failed (the profiled script
  crashed, nothing in the pool fits the request, the Dask scheduler cannot be reached). It is
  the simulator's `RunFailure`, so a failure inside a simulation run is one too.
"""

from __future__ import annotations

from simulator.errors import ConfigError, RunFailure, nearest

InputError = ConfigError
DomainFailure = RunFailure


__all__ = ["ConfigError", "DomainFailure", "InputError", "nearest"]
