"""Rules on the values of a submit file: numbers that are no numbers (NaN, inf, a word),
negative or fractional counts, sizes no machine has, capabilities that do not exist, a negative
queue count, and unterminated quotes. Registered with the other rules by `rules.py`."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from advisor.check.findings import Finding
from advisor.check.rules import Context, _f, rule
from advisor.check.submitfile import Assignment

_NOT_NUMBERS = ("nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity",
                "-infinity")
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)\s*([a-z]*)$", re.I)
_UNIT_MB = {"k": 1 / 1024, "kb": 1 / 1024, "m": 1.0, "mb": 1.0, "g": 1024.0, "gb": 1024.0,
            "t": 1024.0**2, "tb": 1024.0**2}
MAX_REQUEST_MB = 1024.0**3       # 1 PiB: no machine has more memory or scratch disk
MAX_COUNT = {"request_cpus": 100_000, "request_gpus": 1024}
CAPABILITY_RANGE = (1.0, 20.0)   # CUDA compute capabilities run from 1.0 to 12.x today


def _plain(ctx: Context, key: str) -> tuple[Assignment, str] | None:
    a = ctx.sub.last(key)
    if a is None:
        return None
    text = (ctx.sub.value(key) or "").strip().strip('"').strip()
    return None if "$" in text else (a, text)


@rule
def values(ctx: Context) -> Iterator[Finding]:
    """Numbers that are no numbers (NaN, inf, a word), negative, fractional counts, requests no
    machine has, a negative queue count, and unterminated quotes."""
    for key, limit in MAX_COUNT.items():
        got = _plain(ctx, key)
        if got is None:
            continue
        a, text = got
        try:
            x = float(text)
        except ValueError:
            continue  # an expression: HTCondor evaluates it at match time
        if not math.isfinite(x) or text.lower() in _NOT_NUMBERS:
            yield _f("not-a-number", "error", a.line, a.key, f"{key} = {a.value} is not a number.",
                     f"write a whole number, e.g. `{key} = 1`.")
        elif x < 0 or x != int(x) or x > limit:
            why = ("is negative" if x < 0 else "is not a whole number" if x != int(x)
                   else f"is more than any machine has (at most {limit:,})")
            yield _f("bad-count", "error", a.line, a.key, f"{key} = {a.value} {why}.",
                     f"write a whole number, e.g. `{key} = 1`.")
    for key, bare in (("request_memory", 1.0), ("request_disk", 1 / 1024),
                      ("gpus_minimum_memory", 1.0)):
        got = _plain(ctx, key)
        if got is None:
            continue
        a, text = got
        m = _QUANTITY.match(text)
        if text.lower() in _NOT_NUMBERS or (m and not math.isfinite(float(m[1]))):
            yield _f("not-a-number", "error", a.line, a.key, f"{key} = {a.value} is not a number.",
                     f"write a size with its unit, e.g. `{key} = 16GB`.")
            continue
        if m is None or (m[2] and m[2].lower() not in _UNIT_MB):
            continue  # an expression, or an unknown unit (the `units` rule says so)
        mb = float(m[1]) * (_UNIT_MB[m[2].lower()] if m[2] else bare)
        if mb < 0 or not math.isfinite(mb) or mb > MAX_REQUEST_MB:
            why = "is negative" if mb < 0 else "is more than any machine has (over 1 PiB)"
            yield _f("bad-size", "error", a.line, a.key, f"{key} = {a.value} {why}.",
                     f"write the size the job needs with its unit, e.g. `{key} = 16GB`.")
    for key in ("gpus_minimum_capability", "gpus_maximum_capability"):
        got = _plain(ctx, key)
        if got is None:
            continue
        a, text = got
        lo, hi = CAPABILITY_RANGE
        try:
            x = float(text)
        except ValueError:
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
                yield _f("not-a-number", "error", a.line, a.key,
                         f"{key} = {a.value} is not a number: HTCondor reads `{text}` as the name "
                         "of an attribute, which no GPU has, so the job never matches.",
                         f"write the compute capability as a number, e.g. `{key} = 7.5`.")
            continue
        if not math.isfinite(x) or not lo <= x <= hi:
            yield _f("bad-capability", "error", a.line, a.key,
                     f"{key} = {a.value} is not a CUDA compute capability ({lo:g} to {hi:g}).",
                     f"write e.g. `{key} = 7.5`.")
    for line, args in ctx.sub.queue_lines:
        first = args.strip().split(None, 1)[0] if args.strip() else ""
        if re.fullmatch(r"[+-]?\d+(?:\.\d*)?(?:e[+-]?\d+)?", first, re.I) and (
                float(first) < 0 or float(first) != int(float(first))):
            yield _f("bad-queue", "error", line, "queue",
                     f"queue {first}: the number of jobs must be a whole number, 0 or more.",
                     "write e.g. `queue 10`.")
    for a in ctx.sub.assignments:
        if (a.value.count('"') - a.value.count('\\"')) % 2:
            yield _f("unterminated-quote", "error", a.line, a.key,
                     f"{a.key}: the value has an unterminated double quote.",
                     "close the quote (write a literal quote inside a quoted value as \"\").")


