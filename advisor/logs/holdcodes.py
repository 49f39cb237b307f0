"""HTCondor hold reason codes: their names and what they mean for a resource request.

Source: the HTCondor manual, "Job ClassAd attributes", `HoldReasonCode` (the table of
`JobHeldReasonCodes`), htcondor/htcondor 2026-08; the codes docs/DOMAIN.md §6 names are 1, 3, 6, 12, 13,
21, 26, 34, 35, 36, 46 and 47.
"""

from __future__ import annotations

import re

HOLD_REASONS: dict[int, str] = {
    0: "unspecified",
    1: "user request",
    2: "grid (Globus GRAM) error",
    3: "job policy (periodic_hold / on_exit_hold)",
    4: "corrupted credential",
    5: "job policy expression undefined",
    6: "failed to create process",
    7: "unable to open output file",
    8: "unable to open input file",
    9: "unable to open output stream",
    10: "unable to open input stream",
    11: "invalid transfer acknowledgement",
    12: "transfer output error",
    13: "transfer input error",
    14: "initial working directory error",
    15: "submitted on hold",
    16: "spooling input",
    17: "job / shadow version mismatch",
    18: "invalid transfer go-ahead",
    19: "prepare-job hook failed",
    20: "missed deferred execution time",
    21: "held by the execute point (startd)",
    22: "unable to initialize the user log",
    23: "failed to access the user account",
    24: "no compatible shadow",
    25: "invalid cron settings",
    26: "system policy (SYSTEM_PERIODIC_HOLD)",
    27: "system policy expression undefined",
    28: "glexec chown of sandbox to user failed",
    29: "privsep chown of sandbox to user failed",
    30: "glexec chown of sandbox to condor failed",
    31: "privsep chown of sandbox to condor failed",
    32: "maximum input transfer size exceeded",
    33: "maximum output transfer size exceeded",
    34: "job out of resources (memory or disk above the request)",
    35: "invalid container image",
    36: "failed to checkpoint",
    37: "EC2 user error",
    38: "EC2 internal error",
    39: "EC2 administrator error",
    40: "EC2 connection problem",
    41: "EC2 server error",
    42: "EC2 instance potentially lost",
    43: "DAGMan PRE script failed",
    44: "DAGMan POST script failed",
    45: "Singularity/Apptainer test failed",
    46: "job duration exceeded (allowed_job_duration)",
    47: "job execute time exceeded (allowed_execute_duration)",
    48: "shadow prepare-job hook failed",
}

# What a hold means for the next submission. Order matters: memory before duration, since a
# message such as "exceeded memory" also contains "exceeded".
CATEGORIES = ("memory", "disk", "duration", "transfer", "container", "checkpoint", "user", "other")

_MEMORY = re.compile(r"memory|\bRSS\b|ImageSize|out of memory|\bOOM\b", re.IGNORECASE)
_DISK = re.compile(r"\bdisk\b|scratch|sandbox size", re.IGNORECASE)
_DURATION = re.compile(
    r"duration|runtime|run time|wall ?time|time limit|max(imum)? (allowed )?(run|job)|"
    r"too long|running (for )?(more|longer) than|GPUJobLength|JobDurationCategory|hours",
    re.IGNORECASE,
)


def reason_name(code: int | None) -> str:
    """The manual's name for a hold code, or `unknown code N`."""
    if code is None:
        return "no code recorded"
    return HOLD_REASONS.get(code, f"unknown code {code}")


def hold_category(code: int | None, reason: str) -> str:
    """One of CATEGORIES: what the hold says about the request (memory, disk, duration...)."""
    text = reason or ""
    if code in (46, 47):
        return "duration"
    if code == 34:
        if _DISK.search(text) and not _MEMORY.search(text):
            return "disk"
        return "memory"
    if code in (12, 13, 32, 33, 7, 8, 9, 10, 11, 18):
        return "transfer"
    if code in (35, 45):
        return "container"
    if code == 36:
        return "checkpoint"
    if code == 1:
        return "user"
    # Policy holds (3, 21, 26, 0, unknown) say what happened only in the text.
    if _MEMORY.search(text):
        return "memory"
    if _DISK.search(text):
        return "disk"
    if _DURATION.search(text):
        return "duration"
    return "other"
