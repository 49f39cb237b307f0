"""Reading a submit file twice: HTCondor's own parser (`htcondor2.Submit`, the values HTCondor
will use) and a line scan (line numbers, and every assignment: `Submit()` silently keeps the
last one of a repeated command).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import htcondor2

from advisor.errors import InputError

# Lines that are not assignments in the submit language.
DIRECTIVES = ("if", "elif", "else", "endif", "include", "use", "error", "warning")
_ASSIGN = re.compile(r"^\s*([A-Za-z_+][A-Za-z0-9_.+\-]*)\s*=(.*)$")
_UNITS_MB = {"": None, "K": 1 / 1024, "KB": 1 / 1024, "M": 1.0, "MB": 1.0, "G": 1024.0,
             "GB": 1024.0, "T": 1024.0 ** 2, "TB": 1024.0 ** 2}
_QUANTITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*$")


@dataclass(frozen=True)
class Assignment:
    """`key = value` at `line` (1-based; the first line of a continued statement)."""

    line: int
    key: str           # as written: `request_gpu`, `+GPUJobLength`, `MY.Foo`
    value: str
    before_queue: bool  # False for assignments after the first queue statement

    @property
    def is_attribute(self) -> bool:
        """`+Name` or `MY.Name`: a custom job ClassAd attribute."""
        return self.key.startswith("+") or self.key.lower().startswith("my.")

    @property
    def attribute(self) -> str:
        """The attribute name of `+Name`/`MY.Name` (empty for plain commands)."""
        if self.key.startswith("+"):
            return self.key[1:]
        if self.key.lower().startswith("my."):
            return self.key[3:]
        return ""

    @property
    def norm(self) -> str:
        """Case-insensitive identity: `+x` and `MY.x` are the same attribute."""
        return f"+{self.attribute.lower()}" if self.is_attribute else self.key.lower()


@dataclass
class SubmitFile:
    """A parsed submit description."""

    path: str
    text: str
    submit: htcondor2.Submit
    assignments: list[Assignment] = field(default_factory=list)
    queue_lines: list[tuple[int, str]] = field(default_factory=list)   # (line, arguments)

    def all(self, key: str) -> list[Assignment]:
        """Every assignment of `key` (case-insensitive; `+x` == `MY.x`) before the first queue."""
        want = _norm_key(key)
        return [a for a in self.assignments if a.before_queue and a.norm == want]

    def last(self, key: str) -> Assignment | None:
        found = self.all(key)
        return found[-1] if found else None

    def has(self, key: str) -> bool:
        return self.last(key) is not None

    def value(self, key: str) -> str | None:
        """The value HTCondor uses (macros expanded); None when the command is absent."""
        if not self.has(key):
            return None
        name = key if not key.startswith("+") else "MY." + key[1:]
        try:
            return str(self.submit.expand(name)).strip()
        except (KeyError, ValueError, RuntimeError):
            a = self.last(key)
            return a.value if a else None

    def line(self, key: str) -> int | None:
        a = self.last(key)
        return a.line if a else None

    @property
    def macros_used(self) -> set[str]:
        """Names referenced as $(name) anywhere (lower case)."""
        return {m.lower() for m in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_.]*)", self.text)}


def _norm_key(key: str) -> str:
    if key.startswith("+"):
        return "+" + key[1:].lower()
    if key.lower().startswith("my."):
        return "+" + key[3:].lower()
    return key.lower()


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) per statement: comments dropped, `\\` continuations joined."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if pending and line.lstrip().startswith("#"):
            continue  # a comment inside a continued statement
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        out.append((start, " ".join(p.strip() for p in pending)))
        pending = []
    if pending:
        out.append((start, " ".join(p.strip() for p in pending)))
    return out


def parse_submit_text(text: str, path: str = "<submit file>") -> SubmitFile:
    """Parse a submit description; a statement HTCondor cannot read is an InputError (exit 2)."""
    assignments: list[Assignment] = []
    queues: list[tuple[int, str]] = []
    in_items = False   # inside the item list of `queue x in (` ... `)`
    for number, stmt in _logical_lines(text):
        if in_items:
            in_items = stmt.strip() != ")"
            continue
        word = stmt.strip().split(None, 1)[0].lower()
        if word == "queue":
            args = stmt.strip()[5:].strip()
            queues.append((number, args))
            in_items = args.endswith("(")
            continue
        m = _ASSIGN.match(stmt)
        if m:
            assignments.append(Assignment(number, m.group(1), m.group(2).strip(), not queues))
            continue
        if word in DIRECTIVES or stmt.strip().startswith("@"):
            continue
        raise InputError(f"line {number}", stmt.strip()[:80],
                         "is neither `command = value`, a queue statement nor a directive.",
                         "write it as `command = value` (or comment it out with #).", source=path)
    try:
        submit = htcondor2.Submit(text)
    except (ValueError, RuntimeError, htcondor2.HTCondorException) as exc:
        raise InputError("submit file", path, f"HTCondor cannot parse it ({exc}).",
                         "fix the syntax; condor_submit -dry-run shows where it stops.") from None
    return SubmitFile(path=path, text=text, submit=submit, assignments=assignments, queue_lines=queues)


def read_submit_file(path: str | Path) -> SubmitFile:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("SUBMITFILE", str(p), "no such file.", "give the path of a submit file.") from None
    except IsADirectoryError:
        raise InputError("SUBMITFILE", str(p), "is a folder.", "give the path of a submit file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError("SUBMITFILE", str(p), f"cannot be read ({exc.__class__.__name__}).",
                         "give a readable UTF-8 text file.") from None
    return parse_submit_text(text, str(p))


@dataclass(frozen=True)
class Quantity:
    """A size from a submit file: `mb` (None when it is an expression), and whether a unit was written."""

    mb: float | None
    unit: str
    text: str

    @property
    def bare(self) -> bool:
        return self.mb is not None and self.unit == ""


def parse_quantity(value: str, bare_unit_mb: float) -> Quantity | None:
    """`6144MB` → 6144 MB; a bare number is scaled by `bare_unit_mb` (request_disk: KiB =
    1/1024 MB, request_memory: 1 MB). Units K/KB/M/MB/G/GB/T/TB (powers of 2, any case).
    Returns Quantity(mb=None) for an expression, None for a unit HTCondor does not know."""
    m = _QUANTITY.match(value)
    if not m:
        return Quantity(None, "", value)
    number = float(m.group(1))
    unit = m.group(2).upper()
    if unit not in _UNITS_MB:
        return None
    scale = _UNITS_MB[unit]
    return Quantity(number * (bare_unit_mb if scale is None else scale), unit, value)
