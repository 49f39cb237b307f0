"""The one validation toolkit: field helpers every loader uses, with one rule for each check.

Each helper takes a value and the field's full dotted name (`workload.request.gpus`,
`slots[2].cpus`) and returns the checked value or raises `ConfigError` naming the field, the
value and the fix. `default` is what an absent or null value becomes; without one the field is
required.

* `mapping`, `known_keys` (an unknown key is refused with the nearest valid names);
* `number`: finite numbers only, booleans refused, numeric text in the YAML 1.1 and 1.2 forms
  (`"1e-3"`, `"2_000"`) accepted. Every call declares its lower bound, so whether zero is
  meaningful is written in the field's declaration: `minimum=0` (zero allowed: `gpus: 0` is a CPU
  job) or `exclusive_minimum=0` (zero refused: `tasks: 0` never means anything);
* `boolean`, `choice`;
* `string`, `string_list`: text without control characters (newline, CR, NUL, ESC, ...), so no
  field can add a line to a file written from it; `multiline=True` lets free text (notes)
  keep newlines and tabs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from simulator.errors import ConfigError, nearest

__all__ = ["REQUIRED", "boolean", "choice", "control_character", "join", "known_keys",
           "mapping", "number", "string", "string_list"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

# C0 controls but tab, DEL, and the Unicode line breaks (NEL, LINE/PARAGRAPH SEPARATOR).
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]")
# Numbers written as text: YAML 1.1 and 1.2 forms, digits grouped with `_` allowed.
_NUMERIC_TEXT = re.compile(r"[-+]?(?:[0-9](?:_?[0-9])*(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def join(where: str, key: str | int) -> str:
    """The full name of `key` inside `where`: `workload` + `tasks`, `slots` + 0 → `slots[0]`."""
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else str(key)


def _key(field: str) -> str:
    """The last part of a dotted field name, for "write KEY as ..." hints."""
    return re.sub(r"\[\d+\]$", "", field).rsplit(".", 1)[-1]


def _missing(field: str, default: Any) -> Any:
    if default is REQUIRED:
        raise ConfigError(field, None, "is missing.", f"add {_key(field)}.")
    return default


def mapping(value: Any, field: str, example: str) -> Mapping[str, Any]:
    """`value` if it is a mapping; `example` shows how to write one."""
    if not isinstance(value, Mapping):
        raise ConfigError(field, value, "must be a mapping.", f"write it as e.g. {example}.")
    return value


def known_keys(m: Mapping[Any, Any], allowed: Iterable[str], where: str = "") -> None:
    """Refuse the first key of `m` not in `allowed`, suggesting the nearest valid ones."""
    names = tuple(allowed)
    if not isinstance(m, Mapping):
        raise ConfigError(where or "document", m, "must be a mapping.",
                          f"write it as a mapping with the keys: {', '.join(names)}.")
    for key in m:
        if key not in names:
            raise ConfigError(join(where, str(key)), m[key], "is not a known key.",
                              f"use one of: {', '.join(names)}.",
                              suggestions=nearest(str(key), names))


def _as_float(value: Any) -> float | None:
    """The number `value` stands for, or None when it is not a number (bool, text, ...)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not _NUMERIC_TEXT.fullmatch(text):
            return None
        value = text.replace("_", "")
    elif not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:  # an int beyond float range
        return math.inf


def number(value: Any, field: str, *, minimum: float | None = None,
           exclusive_minimum: float | None = None, maximum: float | None = None,
           integer: bool = False, default: Any = REQUIRED, unit: str = "") -> Any:
    """A finite number (an int when `integer`) within the declared bounds.

    Exactly one of `minimum` (inclusive) and `exclusive_minimum` must be given: every field
    states whether its lower bound, usually zero, is a meaningful value.
    """
    if (minimum is None) == (exclusive_minimum is None):
        raise TypeError(f"{field}: declare exactly one of minimum and exclusive_minimum")
    if value is None:
        return _missing(field, default)
    key = _key(field)
    v = _as_float(value)
    if v is None or not math.isfinite(v):
        raise ConfigError(field, value, "must be a finite number." if v is not None else
                          "must be a number.", f"write {key} as a plain number{unit}, e.g. "
                          f"{'4' if integer else '2.5'}.")
    if integer and not v.is_integer():
        raise ConfigError(field, value, "must be a whole number.", f"write {key} as e.g. 4.")
    low = minimum if minimum is not None else exclusive_minimum
    assert low is not None
    if v < low or (exclusive_minimum is not None and v == low):
        if low == 0:
            need = "zero or more" if minimum is not None else "greater than zero"
        else:
            need = f"at least {low:g}" if minimum is not None else f"greater than {low:g}"
        raise ConfigError(field, value, f"must be {need}.", f"give a value {need} for {key}{unit}.")
    if maximum is not None and v > maximum:
        raise ConfigError(field, value, f"is implausibly large (the limit is {maximum:g}{unit}).",
                          f"check the unit of {key}; give at most {maximum:g}{unit}.")
    if integer:
        return int(value) if isinstance(value, int) else int(v)
    return v


def boolean(value: Any, field: str, *, default: Any = REQUIRED) -> Any:
    """true or false (YAML also reads yes/no and on/off as these); `default` when absent."""
    if value is None:
        return _missing(field, default)
    if not isinstance(value, bool):
        raise ConfigError(field, value, "must be true or false.", f"write {_key(field)}: true "
                          f"or {_key(field)}: false.")
    return value


def choice(value: Any, field: str, options: Iterable[str], *, default: Any = REQUIRED,
           fix: str | None = None) -> Any:
    """One of `options` (exactly as written there), with the nearest ones suggested."""
    names = tuple(options)
    if value is None:
        return _missing(field, default)
    if not isinstance(value, str) or value not in names:
        raise ConfigError(field, value, f"must be one of: {', '.join(names)}.",
                          fix or f"write one of them as {_key(field)}.",
                          suggestions=nearest(str(value), names))
    return value


def _visible(ch: str) -> str:
    return {"\n": "\\n", "\r": "\\r", "\0": "\\0", "\t": "\\t"}.get(
        ch, f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")


def control_character(text: str, *, multiline: bool = False) -> str | None:
    """The first control character of `text`, shown escaped (`\\n`), or None."""
    m = (_CONTROL_MULTILINE if multiline else CONTROL).search(text)
    return _visible(m.group(0)) if m else None


def string(value: Any, field: str, *, default: Any = REQUIRED, multiline: bool = False,
           allow_empty: bool = True, max_length: int | None = None, coerce: bool = False) -> Any:
    """Text without control characters. `coerce` turns a number (`name: 2024`) into its text."""
    if value is None:
        return _missing(field, default)
    if coerce and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ConfigError(field, value, "must be text.", f'write {_key(field)} as text, e.g. "x".')
    bad = control_character(value, multiline=multiline)
    if bad:
        raise ConfigError(field, value, f"contains a control character ({bad}), which could "
                          "start a new line or end the value in a file written from it.",
                          f"remove line breaks and control characters from {_key(field)}.")
    if not allow_empty and not value.strip():
        raise ConfigError(field, value, "is empty.", f"give {_key(field)} a value.")
    if max_length is not None and len(value) > max_length:
        raise ConfigError(field, f"{value[:40]}...", f"is {len(value):,} characters long "
                          f"(the limit is {max_length:,}).", f"shorten {_key(field)}.")
    return value


def string_list(value: Any, field: str, *, default: Any = REQUIRED) -> list[str]:
    """A list of texts (such as a script's arguments), each without control characters."""
    if value is None:
        return list(_missing(field, default))
    if not isinstance(value, (list, tuple)):
        raise ConfigError(field, value, "must be a list of strings.",
                          f'write {_key(field)} as a list, e.g. ["--epochs", "3"].')
    return [string(v, join(field, i)) for i, v in enumerate(value)]
