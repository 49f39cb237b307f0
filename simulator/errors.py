"""Errors raised when an input (a scenario, a pool file, the GPU catalog) is not valid.

A `ConfigError` names the field, the bad value and the fix, and suggests the nearest valid
name where one exists. The advisor's CLI turns it into exit code 2 with no traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


def nearest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The candidates closest to `name`: prefix matches first, then difflib's close matches."""
    pool = list(dict.fromkeys(str(c) for c in candidates))
    low = name.lower()
    prefix = [c for c in pool if c.lower().startswith(low) or low in c.lower()] if low else []
    if len(prefix) > n:
        prefix = []  # too ambiguous to be helpful as a prefix; fall back to similarity
    close = difflib.get_close_matches(name, pool, n=n, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in pool}
        close = [lowered[c] for c in difflib.get_close_matches(low, list(lowered), n=n, cutoff=0.6)]
    return list(dict.fromkeys(prefix + close))[:n]


class ConfigError(ValueError):
    """A bad input value: which field, what value, how to fix it.

    `source` names the file (or "scenario", "catalog") the value came from.
    """

    def __init__(
        self,
        field: str,
        value: Any,
        problem: str,
        fix: str | None = None,
        *,
        source: str | None = None,
        suggestions: Iterable[str] = (),
    ) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        self.fix = fix
        self.source = source
        self.suggestions = list(suggestions)
        super().__init__(self.render())

    def render(self) -> str:
        where = f"{self.source}: " if self.source else ""
        text = f"{where}{self.field} = {self.value!r}: {self.problem}"
        if self.suggestions:
            text += " Did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        if self.fix:
            text += f"\n  To fix: {self.fix}"
        return text

    def with_source(self, source: str) -> ConfigError:
        """The same error, attributed to `source` (a file path) if it had none."""
        if self.source is None:
            self.source = source
            self.args = (self.render(),)
        return self

    def __str__(self) -> str:
        return self.render()


class RunFailure(RuntimeError):
    """The inputs were fine but the run could not happen (a Dask scheduler that cannot be
    reached). The advisor's CLI turns it into exit code 1: `advisor.errors.DomainFailure` is this
    class. `details` may hold what was measured so far, and the field and value concerned."""

    def __init__(self, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.details = details or {}
