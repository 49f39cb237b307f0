"""Dotted keys into a nested mapping: the one implementation of setting `a.b[0].c = value`.

`split_key("pool.slots[0].count")` gives `["pool", "slots", 0, "count"]` (`slots.0` is the same
index); `set_key(d, key, value)` walks a mapping read from YAML and sets the value, creating
mappings where a key is absent, null or a `none`-style string. `Scenario.with_overrides` uses
it with plain keys; the advisor's `--vary` resolves its friendly selectors (a GPU name, a tier
name) to such a path and sets it here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from simulator.errors import ConfigError

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def split_key(key: str) -> list[str | int]:
    """The parts of a dotted key; list indexes (`[0]` or `.0`) as ints."""
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
    return parts


def show_key(parts: Sequence[str | int]) -> str:
    """`["pool", "slots", 0, "count"]` → `pool.slots[0].count`."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


def set_key(d: dict[str, Any], key: str | Sequence[str | int], value: Any) -> Any:
    """Set the value at `key` (a dotted key or its parts) in `d`; returns the value it replaces
    (None when there was none). A bad path is a ConfigError naming the key."""
    parts = split_key(key) if isinstance(key, str) else list(key)
    text = key if isinstance(key, str) else show_key(parts)
    node: Any = d
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise ConfigError(text, value, f"index {part} is out of range.",
                                  "use the index of an existing list entry.")
            node = node[part]
            continue
        if not isinstance(node, dict):
            raise ConfigError(text, value, f"{part!r} is not inside a mapping.", "check the key path.")
        child = node.get(part)
        if child is None or (isinstance(child, str) and not isinstance(nxt, int)):
            node[part] = {}  # absent, null or `none`: start an empty mapping
        node = node[part]
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ConfigError(text, value, f"index {last} is out of range.",
                              "use the index of an existing list entry.")
        old = node[last]
        node[last] = value
        return old
    if not isinstance(node, dict):
        raise ConfigError(text, value, "does not lead to a mapping.", "check the key path.")
    old = node.get(last)
    node[last] = value
    return old


__all__ = ["set_key", "show_key", "split_key"]
