"""Secrets in the scripts a submit file runs (`executable`, `run.sh`-style scripts it sends).

A key written into run.sh travels to every execute point and sits in a file anyone who can read
the submit directory can read. Only scripts inside the submit file's folder are read (never a
path elsewhere: reviewing a file must not read arbitrary files), at most MAX_SCRIPT_BYTES each.
"""

from __future__ import annotations

import re
from pathlib import Path

from advisor.check.findings import Finding
from advisor.check.secrets import find_secrets, redact
from advisor.check.submitfile import SubmitFile

MAX_SCRIPT_BYTES = 1_000_000
_SCRIPT_SUFFIXES = (".sh", ".bash")
# `./run.sh` or `bash run.sh` inside a script: the scripts it starts, reviewed too.
_CALLED = re.compile(r"(?:^|[\s;&|(])(?:\./|bash\s+|sh\s+)([A-Za-z0-9_.\-]+\.(?:sh|bash))\b")


def _inside(base: Path, name: str) -> Path | None:
    if not name or "://" in name or "$" in name:
        return None
    try:
        path = (base / name).resolve()
        path.relative_to(base.resolve())
        return path if path.is_file() else None
    except (OSError, ValueError):   # outside the folder, or a name the OS refuses (too long)
        return None


def _read(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_SCRIPT_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data:
        return None   # a binary program, not a script
    return data.decode("utf-8", errors="replace")


def review_scripts(sub: SubmitFile) -> list[Finding]:
    """`secret-in-script` findings for the executable and the shell scripts the job receives."""
    base = Path(sub.path).parent
    todo: list[tuple[str, int | None, str]] = []   # (name, submit line, command)
    exe = sub.last("executable")
    if exe is not None:
        todo.append(((sub.value("executable") or exe.value).strip(), exe.line, exe.key))
    tif = sub.last("transfer_input_files")
    if tif is not None:
        for entry in (sub.value("transfer_input_files") or tif.value).split(","):
            if entry.strip().endswith(_SCRIPT_SUFFIXES):
                todo.append((entry.strip(), tif.line, tif.key))
    findings: list[Finding] = []
    seen: set[Path] = set()
    while todo:
        name, line, command = todo.pop(0)
        path = _inside(base, name)
        if path is None or path in seen:
            continue
        seen.add(path)
        text = _read(path)
        if text is None:
            continue
        for number, row in enumerate(text.splitlines(), start=1):
            for s in find_secrets(row):
                findings.append(Finding(
                    "secret-in-script", "error", line, command,
                    redact(f"{name} line {number}: {s.name} = {s.masked}: a secret written in the "
                           "script the job runs travels to every execute point and can be read by "
                           "anyone who can read the script."),
                    "remove it and rotate it; have the script read it at run time from a file only "
                    "you can read, sent with the job: `mkdir -p secrets; chmod 700 secrets`, put the "
                    "value in secrets/NAME (chmod 600), add `secrets` to transfer_input_files and "
                    'write `--api-key "$(cat secrets/NAME)"` in the script.'))
            for m in _CALLED.finditer(row):
                todo.append((str((Path(name).parent / m.group(1))), line, command))
    return findings


__all__ = ["MAX_SCRIPT_BYTES", "review_scripts"]
