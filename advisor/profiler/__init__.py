"""Profile an unmodified training script (or any command) into a WorkloadProfile.

    from advisor.profiler import profile_script, profile_command, load_profile
    profile = profile_script("train.py", ["--epochs", "1"], steps=20, warmup=3)

The script runs as ``__main__`` in a child process (see `_child`, `_hooks`, `runner`); what it
measured becomes a profile dict (see `schema`, docs/PROFILE_SCHEMA.md). Failures of the script
(an exception, a hang, too much memory) raise `DomainFailure` with what was measured so far;
bad arguments raise `InputError`.

The names are loaded lazily from `advisor.profiler.api`, so that the child process, which
imports this package first, starts without numpy, rich or the schema code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["SCHEMA_VERSION", "default_output_path", "load_profile", "measure_bare_steps",
           "profile_command", "profile_script", "validate_profile", "write_profile"]

if TYPE_CHECKING:
    from advisor.profiler.api import (
        SCHEMA_VERSION,
        default_output_path,
        load_profile,
        measure_bare_steps,
        profile_command,
        profile_script,
        validate_profile,
        write_profile,
    )


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("advisor.profiler.api"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
