"""What `advisor check` reports: findings with severity, line, command, why and the fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from advisor.check.secrets import redact

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    """One problem in a submit file.

    `severity`: error (the file will not do what the researcher wants), warning (it works but
    risks losing work or time), info (harmless, worth knowing). `line` is 1-based (None when
    the finding is about something missing). `message` says why; `fix` says what to write.
    """

    code: str
    severity: str
    line: int | None
    command: str
    message: str
    fix: str
    suggestions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {SEVERITIES}")


@dataclass
class CheckReport:
    """All findings on one submit file, plus the offline match analysis against the pool."""

    file: str
    pool: str
    findings: list[Finding] = field(default_factory=list)
    analysis: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    def counts(self) -> dict[str, int]:
        return {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES}

    @property
    def exit_code(self) -> int:
        """0 without error-severity findings, 1 with (a domain failure: the file won't work)."""
        return 1 if self.errors else 0

    def sorted(self) -> list[Finding]:
        order = {s: i for i, s in enumerate(SEVERITIES)}
        return sorted(self.findings, key=lambda f: (f.line if f.line is not None else 10**9,
                                                    order[f.severity], f.code))

    def to_dict(self) -> dict[str, Any]:
        """What the CLI prints (as JSON or a table); every text masked once more (secrets.redact)."""
        return {
            "file": self.file,
            "pool": self.pool,
            "ok": not self.errors,
            "summary": self.counts(),
            "findings": [
                {"severity": f.severity, "line": f.line, "command": redact(f.command), "code": f.code,
                 "message": redact(f.message), "fix": redact(f.fix), "suggestions": list(f.suggestions)}
                for f in self.sorted()
            ],
            "analysis": self.analysis,
        }
