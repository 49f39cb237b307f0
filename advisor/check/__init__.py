"""`advisor check`: review a submit file a researcher already has, against a pool.

It reads the file with HTCondor's own parser (`htcondor2.Submit`) and with a line scan (line
numbers; repeated commands, of which `Submit()` keeps only the last), then applies the rules in
`advisor.check.rules`: misspelled commands and attributes, a second `requirements`, requests no
slot of the pool satisfies (clause by clause, like `condor_q -better-analyze`, offline), sizes in
the wrong unit, long jobs without checkpointing, secrets, legacy lines.

Exit codes (via the CLI): 0 no error-severity finding, 1 errors found, 2 the file cannot be read.
"""

from __future__ import annotations

from pathlib import Path

from advisor.check.findings import SEVERITIES, CheckReport, Finding
from advisor.check.rules import run_rules
from advisor.check.submitfile import SubmitFile, parse_submit_text, read_submit_file
from simulator.pool import Pool, load_pool


def check_submit(sub: SubmitFile, pool: Pool) -> CheckReport:
    findings, analysis = run_rules(sub, pool)
    return CheckReport(file=sub.path, pool=pool.name, findings=findings, analysis=analysis)


def check_text(text: str, pool: Pool | str = "chtc", path: str = "<submit file>") -> CheckReport:
    """Check submit-file text (InputError when it cannot be parsed)."""
    pool_obj = load_pool(pool) if isinstance(pool, str) else pool
    return check_submit(parse_submit_text(text, path), pool_obj)


def check_file(path: str | Path, pool: Pool | str = "chtc") -> CheckReport:
    """Check a submit file on disk (InputError when it cannot be read or parsed)."""
    pool_obj = load_pool(pool) if isinstance(pool, str) else pool
    return check_submit(read_submit_file(path), pool_obj)


__all__ = ["SEVERITIES", "CheckReport", "Finding", "check_file", "check_submit", "check_text"]
