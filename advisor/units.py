"""How quantities are written for people: one formatter per unit, shared by every command."""

from __future__ import annotations


def fmt_hours(h: float) -> str:
    """A duration given in hours, in the unit that reads best: `40 s`, `25 min`, `3.5 h`, `7.0 days`."""
    if h < 1 / 60:
        return f"{h * 3600:.0f} s"
    if h < 1:
        return f"{h * 60:.0f} min"
    if h < 48:
        return f"{h:.1f} h"
    return f"{h / 24:.1f} days"


__all__ = ["fmt_hours"]
