"""Reading a submit file twice: HTCondor's own parser (`htcondor2.Submit`, the values HTCondor
will use) and a line scan (line numbers, and every assignment: `Submit()` silently keeps the
last one of a repeated command).

Both read the file only after `advisor.check.safety.neutralise` took out what would run a
command, read another file or expand forever (reported as `SubmitFile.findings`). Error messages
show a statement with its secrets masked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import htcondor2

from advisor.check.findings import Finding
from advisor.check.safety import neutralise
from advisor.check.secrets import SECRET_NAME, find_secrets, redact
from advisor.errors import InputError
from simulator.request import parse_quantity as parse_quantity  # re-exported: the one unit rule

# Lines that are not assignments in the submit language.
DIRECTIVES = ("if", "elif", "else", "endif", "include", "use", "error", "warning")
_ASSIGN = re.compile(r"^\s*([A-Za-z_+][A-Za-z0-9_.+\-]*)\s*=(.*)$")


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
    # What reading found before any rule ran: command includes, macro cycles (see safety.py).
    findings: list[Finding] = field(default_factory=list)

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


def _shown(stmt: str) -> str:
    """A statement for an error message: secrets masked, and nothing after a secret-like name."""
    text = redact(stmt.strip())
    first = text.split(None, 1)[0] if text.split() else ""
    if re.fullmatch(SECRET_NAME, first.lstrip("+"), re.I) or find_secrets(text):
        return f"{first} ***" if first else "***"
    return text[:80]


def parse_submit_text(text: str, path: str = "<submit file>") -> SubmitFile:
    """Parse a submit description; a statement HTCondor cannot read is an InputError (exit 2).

    Nothing in the file runs: `advisor.check.safety.neutralise` removes command includes, file
    includes and macro cycles first (reported in `SubmitFile.findings`), and the bindings only
    see what is left."""
    safe = neutralise(text, path)
    assignments: list[Assignment] = []
    queues: list[tuple[int, str]] = []
    in_items = False   # inside the item list of `queue x in (` ... `)`
    here: tuple[int, str, str, list[str]] | None = None   # inside `NAME @=TAG` ... `@TAG`
    for number, stmt in _logical_lines(safe.scan_text):
        if here is not None:
            if stmt.strip() == "@" + here[2]:
                assignments.append(Assignment(here[0], here[1], "\n".join(here[3]), not queues))
                here = None
            else:
                here[3].append(stmt.strip())
            continue
        if in_items:
            in_items = stmt.strip() != ")"
            continue
        heredoc = re.match(r"^\s*([A-Za-z_+][A-Za-z0-9_.+\-]*)\s*@=\s*(\S*)\s*$", stmt)
        if heredoc:
            here = (number, heredoc.group(1), heredoc.group(2), [])
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
        raise InputError(f"line {number}", _shown(stmt),
                         "is neither `command = value`, a queue statement nor a directive.",
                         "write it as `command = value` (or comment it out with #).", source=path)
    if here is not None:
        raise InputError(f"line {here[0]}", f"{here[1]} @={here[2]}",
                         f"starts a multi-line value that no `@{here[2]}` line ends.",
                         f"end it with a line `@{here[2]}`.", source=path)
    try:
        submit = htcondor2.Submit(safe.bindings_text)
    except (ValueError, RuntimeError, htcondor2.HTCondorException) as exc:
        raise InputError("submit file", path, f"HTCondor cannot parse it ({redact(str(exc))}).",
                         "fix the syntax; condor_submit -dry-run shows where it stops.") from None
    return SubmitFile(path=path, text=text, submit=submit, assignments=assignments,
                      queue_lines=queues, findings=safe.findings)


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
