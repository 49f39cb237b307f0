"""The advisor's error vocabulary: the CLI maps these to exit codes.

* `InputError` (exit 2): bad usage or a bad input file; names the field, the value and the fix.
  It is the simulator's `ConfigError`, so one `except` covers both packages.
* `DomainFailure` (exit 1): the inputs were fine but the action failed (the profiled script
  crashed, nothing in the pool fits the request).
"""

from __future__ import annotations

from simulator.errors import ConfigError, nearest

InputError = ConfigError


class DomainFailure(RuntimeError):
    """The action could not succeed: exit code 1. `details` may hold what was measured so far."""

    def __init__(self, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


__all__ = ["ConfigError", "DomainFailure", "InputError", "nearest"]
