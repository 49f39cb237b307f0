"""`advisor check`: review a submit file a researcher already has, against a pool.

It reads the file with HTCondor's own parser (`htcondor2.Submit`) and with a line scan (line
numbers; repeated commands, of which `Submit()` keeps only the last), then applies the rules in
`advisor.check.rules` (misspelled commands and attributes, a second `requirements`, sizes in the
wrong unit, legacy lines), `advisor.check.pool_rules` (requests no slot of the pool satisfies,
clause by clause like `condor_q -better-analyze`, offline; long jobs without checkpointing;
secrets) and `advisor.check.values`.

Nothing in the reviewed file runs: command includes (`include : CMD |`), file includes and macro
cycles are removed before the parser sees the file and reported (`advisor.check.safety`); the
scripts the file runs are read for secrets (`advisor.check.scripts`).

Exit codes (via the CLI): 0 no error-severity finding, 1 errors found, 2 the file cannot be read.

The heavy parts (the HTCondor bindings, the pool model) load on first use, so that
`advisor.check.secrets` stays cheap to import for the profiler.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from advisor.check.findings import SEVERITIES, CheckReport, Finding

if TYPE_CHECKING:
    from advisor.check.submitfile import SubmitFile
    from simulator.pool import Pool


def check_submit(sub: SubmitFile, pool: Pool, *, scripts: bool = False) -> CheckReport:
    """Apply the rules; `scripts`: also read the scripts next to the file for secrets."""
    from advisor.check.rules import run_rules
    from advisor.check.scripts import review_scripts

    findings, analysis = run_rules(sub, pool)
    found = list(sub.findings) + findings + (review_scripts(sub) if scripts else [])
    return CheckReport(file=sub.path, pool=pool.name, findings=found, analysis=analysis)


def check_text(text: str, pool: Pool | str = "chtc", path: str = "<submit file>") -> CheckReport:
    """Check submit-file text (InputError when it cannot be parsed)."""
    from advisor.check.submitfile import parse_submit_text
    from simulator.pool import load_pool

    pool_obj = load_pool(pool) if isinstance(pool, str) else pool
    return check_submit(parse_submit_text(text, path), pool_obj)


def check_file(path: str | Path, pool: Pool | str = "chtc") -> CheckReport:
    """Check a submit file on disk and the scripts it runs (InputError when it cannot be read)."""
    from advisor.check.submitfile import read_submit_file
    from simulator.pool import load_pool

    pool_obj = load_pool(pool) if isinstance(pool, str) else pool
    return check_submit(read_submit_file(path), pool_obj, scripts=True)


__all__ = ["SEVERITIES", "CheckReport", "Finding", "check_file", "check_submit", "check_text"]
