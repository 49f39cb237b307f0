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

# A password inside a URL: scheme://user:PASSWORD@host (the password is group 2).
URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/@\s]*:)([^@/\s]+)(@)")

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
    for m in URL_PASSWORD.finditer(value):
        if not any(a <= m.start(2) < b for a, b in spans) and not _is_placeholder(m.group(2)):
            found.append(Secret("a password in a URL", "***"))
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
    text = URL_PASSWORD.sub(lambda m: m.group(0) if _is_placeholder(m.group(2))
                            else f"{m.group(1)}***{m.group(3)}", text)
    return text


# --- secrets in a script's command-line arguments (advisor profile) ----------------------------

# `<secret:api_key>`: what a profile stores instead of a secret argument; the written run.sh reads
# the value from secrets/api_key at run time.
PLACEHOLDER = re.compile(r"<secret:([a-z0-9_]+)>")
SECRETS_DIR = "secrets"
# Option names that take a secret beyond SECRET_NAME: --key, --hf-key, --wandb-key (not --sort-key).
_KEY_OPTION = re.compile(r"(?i)^(?:[a-z0-9]+[_\-])*key$")
_NOT_SECRET_KEY = re.compile(r"(?i)(sort|primary|foreign|group|dict|index|cache|partition|lookup|"
                             r"metric|monitor|target|label|input|output|image|text|data|column|"
                             r"feature|hash|seed|random|rng|id|map|join|shard|split|sample|batch)[_\-]?key$")
_NOT_SECRET_TOKEN = re.compile(r"(?i)(pad|bos|eos|unk|sep|cls|mask|special|start|end|stop)[_\-]?tokens?$")
# Short names for the well-known token formats (the file a run.sh reads them from).
_TOKEN_NAMES = {"sk-": "api_key", "hf_": "hf_token", "github_pat_": "github_token", "gh": "github_token",
                "glpat-": "gitlab_token", "AKIA": "aws_access_key_id", "xox": "slack_token",
                "eyJ": "jwt"}


@dataclass(frozen=True)
class SecretArg:
    """A secret found in a script's arguments: the file name that will hold it and where it was."""

    name: str      # api_key: stored as <secret:api_key>, read from secrets/api_key
    where: str     # "--api-key", "a password in a URL", "a token (hf_***)"
    masked: str

    @property
    def placeholder(self) -> str:
        return f"<secret:{self.name}>"

    @property
    def path(self) -> str:
        return f"{SECRETS_DIR}/{self.name}"


def _is_reference(value: str) -> bool:
    """An argument value that names a secret rather than being one: $VAR, a path, a number."""
    v = value.strip("'\"")
    return (not v or v.startswith(("$", "%", "<", "/", "./", "../", "~"))
            or v.lower() in {"none", "null", "false", "true", "yes", "no"}
            or re.fullmatch(r"[-+]?[0-9.eE+\-]+", v) is not None
            or v.endswith((".txt", ".key", ".json", ".pem", ".token")))


def _secret_option(option: str, value: str) -> bool:
    """`--option value` passes a secret: a secret-like option name and a value that is not a reference."""
    name = option.lstrip("-")
    if not option.startswith("-") or not name or _is_reference(value) or PLACEHOLDER.fullmatch(value):
        return False
    if re.fullmatch(SECRET_NAME, name, re.I):
        return not (NOT_SECRET_NAME.search(name) or _NOT_SECRET_TOKEN.search(name)
                    or _NOT_SECRET_KEY.search(name))
    if _KEY_OPTION.match(name) and not _NOT_SECRET_KEY.search(name):
        # a bare --key is often a dict key or a metric name: only token-like values count
        return len(value) >= 8 and " " not in value and (any(c.isdigit() for c in value) or len(value) >= 20)
    return False


def _file_name(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_") or "secret"


def scrub_args(args: list[str] | tuple[str, ...]) -> tuple[list[str], list[SecretArg]]:
    """`args` with every secret replaced by a `<secret:NAME>` placeholder, and what was found.

    Finds `--api-key VALUE`, `--api-key=VALUE` (and --password, --token, --secret, --key, ...),
    `NAME=VALUE` with a secret-like NAME, passwords in URLs (`scheme://user:PASS@host`) and
    well-known token formats anywhere (sk-..., hf_..., ghp_..., AKIA...). The same value found
    twice gets one name.
    """
    out = [str(a) for a in args]
    found: list[SecretArg] = []
    by_value: dict[str, SecretArg] = {}

    def take(value: str, label: str, where: str) -> str:
        if value in by_value:
            return by_value[value].placeholder
        base = _file_name(label)
        name, n = base, 2
        while any(s.name == name for s in found):
            name, n = f"{base}_{n}", n + 1
        secret = SecretArg(name, where, mask(value))
        found.append(secret)
        by_value[value] = secret
        return secret.placeholder

    i = 0
    while i < len(out):
        arg = out[i]
        option, eq, value = arg.partition("=")
        if eq and option.startswith("-") and _secret_option(option, value):
            out[i] = f"{option}={take(value, option, option)}"
        elif (not eq and i + 1 < len(out) and not out[i + 1].startswith("--")
              and _secret_option(arg, out[i + 1])):
            out[i + 1] = take(out[i + 1], arg, arg)
            i += 1
        elif eq and not option.startswith("-") and re.fullmatch(SECRET_NAME, option.split(".")[-1], re.I) \
                and not NOT_SECRET_NAME.search(option) and not _is_reference(value) \
                and not PLACEHOLDER.fullmatch(value):
            out[i] = f"{option}={take(value, option.split('.')[-1], option)}"
        else:
            def url(m: re.Match[str]) -> str:
                if PLACEHOLDER.fullmatch(m.group(2)):
                    return m.group(0)
                return m.group(1) + take(m.group(2), "url_password", "a password in a URL") + m.group(3)

            arg = URL_PASSWORD.sub(url, arg)
            for prefix, pattern in TOKEN_PATTERNS:
                label = _TOKEN_NAMES[prefix]
                arg = pattern.sub(lambda m, label=label: take(m.group(0), label,  # type: ignore[misc]
                                                              f"a token ({mask(m.group(0))})"), arg)
            out[i] = arg
        i += 1
    return out, found


def secret_names(words: list[str] | tuple[str, ...] | str) -> list[str]:
    """The `<secret:NAME>` placeholders in `words`, in order, without repeats."""
    text = words if isinstance(words, str) else " ".join(str(w) for w in words)
    return list(dict.fromkeys(PLACEHOLDER.findall(text)))


def secret_file_help(names: list[str]) -> str:
    """How to create the files a written job reads its secrets from."""
    files = " ".join(f"{SECRETS_DIR}/{n}" for n in names)
    return (f"create {files} next to the submit file, readable only by you: "
            f"`mkdir -p {SECRETS_DIR} && chmod 700 {SECRETS_DIR}`, then for each file "
            f"`(umask 077; cat > {SECRETS_DIR}/NAME)` (paste the value, Ctrl-D) and `chmod 600` it. "
            f"The submit file sends the {SECRETS_DIR} folder with transfer_input_files; never commit it. "
            "Rotate any key that was ever written in a file or shell history.")


def secret_values(args: list[str] | tuple[str, ...]) -> list[str]:
    """The raw secret values `scrub_args` replaces (for masking text that echoes them; never
    stored or printed). Longest first, so that a value containing another is masked whole."""
    values: set[str] = set()
    for original, scrubbed in zip(args, scrub_args(args)[0], strict=True):
        if original != scrubbed:
            literal = PLACEHOLDER.split(scrubbed)[::2]   # the text around the placeholders
            m = re.fullmatch("(.+?)".join(re.escape(p) for p in literal), original, re.DOTALL)
            values.update(m.groups() if m else ())
    return sorted(values, key=len, reverse=True)
