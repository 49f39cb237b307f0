"""Secrets in a submit file: found, named, never printed.

`environment` and `arguments` end up in the job ClassAd, which `condor_q -l` shows to other
users of the access point, and in the job's logs. Findings name the variable or option and a
masked value (`sk-***`), never the value itself; `redact` masks any text the report prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Well-known token formats: (the prefix kept when masking, pattern).
TOKEN_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (prefix, re.compile(pattern)) for prefix, pattern in (
        ("sk-", r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{8,}"),      # OpenAI / Anthropic style keys
        ("hf_", r"\bhf_[A-Za-z0-9]{10,}"),                        # Hugging Face
        ("github_pat_", r"\bgithub_pat_[A-Za-z0-9_]{20,}"),       # GitHub
        ("gh", r"\bgh[pousr]_[A-Za-z0-9]{20,}"),
        ("glpat-", r"\bglpat-[A-Za-z0-9_\-]{16,}"),               # GitLab
        ("AKIA", r"\bAKIA[0-9A-Z]{16}\b"),                        # AWS access key id
        ("xox", r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"),              # Slack
        ("eyJ", r"\beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{5,}"),  # JWT
    ))
# W&B API keys: 40 hex digits, flagged only next to the word wandb (else likely a git commit).
WANDB_KEY = re.compile(r"\b[0-9a-f]{40}\b")

# NAME=value (environment) or --name value / --name=value (arguments) with a secret-like name.
SECRET_NAME = r"[A-Za-z0-9_\-]*(?:api[_\-]?key|apikey|token|secret|passw(?:or)?d|passwd|pwd|access[_\-]?key|private[_\-]?key|credential|auth)[A-Za-z0-9_\-]*"
_ASSIGNED = re.compile(rf"(?i)\b({SECRET_NAME})\s*[=:]\s*('[^']*'|\"[^\"]*\"|[^\s;'\"]+)")
_OPTION = re.compile(rf"(?i)(--?{SECRET_NAME})(?:\s+|=)('[^']*'|\"[^\"]*\"|[^\s;'\"-][^\s;'\"]*)")

# Names that contain a secret-like word but are not secrets (tokenizer settings, authors, files).
NOT_SECRET_NAME = re.compile(r"(?i)(tokeni[sz]|tokens|(num|max|min)[_\-]?token|token[_\-]?(len|length|count|limit|ids?|type)"
                             r"|author|[_\-](file|path|dir)$)")

# File names that hold secrets.
SECRET_FILES = re.compile(r"(?i)(^|/)(\.env(\.[\w-]+)?|[\w-]*\.env|\.netrc|credentials(\.json)?|"
                          r"id_(rsa|ed25519|ecdsa|dsa)|[\w-]*\.pem|[\w-]*\.key|\.pgpass|"
                          r"[\w-]*secrets?\.(ya?ml|json|txt|toml))$")


@dataclass(frozen=True)
class Secret:
    """A secret found in a value: what names it and its masked form."""

    name: str        # the variable or option, or the token kind
    masked: str      # e.g. sk-***; never the value


def mask(value: str) -> str:
    """`sk-abc123...` → `sk-***`; other values → `***`. Never more than a known prefix."""
    v = value.strip("'\"")
    for prefix, pattern in TOKEN_PATTERNS:
        if pattern.match(v):
            return f"{v[:len(prefix)] if prefix != 'gh' else v[:4]}***"
    return "***"


def _is_placeholder(value: str) -> bool:
    """`$ENV{HF_TOKEN}`, `$(token_file)`, a path to a file: references, not secrets."""
    v = value.strip("'\"")
    return (not v or v.startswith(("$", "%", "<")) or v.lower() in {"none", "null", "false", "true"}
            or re.fullmatch(r"[0-9.]+", v) is not None
            or "/" in v or v.endswith((".txt", ".key", ".json", ".pem", ".token")))


def find_secrets(value: str) -> list[Secret]:
    """Secrets in one submit-file value (environment, arguments, ...)."""
    found: list[Secret] = []
    spans: list[tuple[int, int]] = []
    for regex in (_ASSIGNED, _OPTION):
        for m in regex.finditer(value):
            name, secret = m.group(1), m.group(2)
            if _is_placeholder(secret) or NOT_SECRET_NAME.search(name):
                continue
            found.append(Secret(name.lstrip("-"), mask(secret)))
            spans.append(m.span(2))
    for _prefix, pattern in TOKEN_PATTERNS:
        for m in pattern.finditer(value):
            if any(a <= m.start() < b for a, b in spans):
                continue
            found.append(Secret(f"a token ({mask(m.group(0))})", mask(m.group(0))))
            spans.append(m.span())
    if re.search(r"(?i)wandb", value):
        for m in WANDB_KEY.finditer(value):
            if not any(a <= m.start() < b for a, b in spans):
                found.append(Secret("a W&B API key", "***"))
    return found


def redact(text: str) -> str:
    """`text` with every secret-looking value replaced by its mask (for anything printed)."""
    def assigned(m: re.Match[str]) -> str:
        if (_is_placeholder(m.group(2)) or NOT_SECRET_NAME.search(m.group(1))
                or "***" in m.group(2)):
            return m.group(0)
        return m.group(0).replace(m.group(2), mask(m.group(2)))

    text = _ASSIGNED.sub(assigned, text)
    text = _OPTION.sub(assigned, text)
    for _prefix, pattern in TOKEN_PATTERNS:
        text = pattern.sub(lambda m: mask(m.group(0)), text)
    if re.search(r"(?i)wandb", text):
        text = WANDB_KEY.sub("***", text)
    return text
