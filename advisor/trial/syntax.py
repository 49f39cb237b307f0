"""The value syntaxes of the submit commands a trial needs: `arguments`, `environment`,
file lists and `transfer_output_remaps`.

Source: the HTCondor manual, condor_submit, "arguments" and "environment". Both have two forms:

* the new syntax, the whole value in double quotes: entries separated by blanks, a blank kept
  inside single quotes, `''` a literal single quote inside single quotes and `""` a literal
  double quote anywhere;
* the old syntax, no outer double quotes: `arguments` split at blanks (`\\"` a literal double
  quote), `environment` split at `;` (`NAME=value;NAME2=value2`).
"""

from __future__ import annotations

import re

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


class SyntaxProblem(ValueError):
    """A value that does not follow the command's syntax; the message says what is wrong."""


def is_new_syntax(value: str) -> bool:
    text = value.strip()
    return len(text) >= 2 and text.startswith('"') and text.endswith('"')


def _split_new(inner: str) -> list[str]:
    """Blank-separated words of the new syntax (outer double quotes already removed)."""
    words: list[str] = []
    current: list[str] = []
    has_word = False
    i = 0
    while i < len(inner):
        c = inner[i]
        if c == '"':
            if inner[i + 1:i + 2] != '"':
                raise SyntaxProblem("a double quote inside the value must be doubled (\"\").")
            current.append('"')
            has_word = True
            i += 2
            continue
        if c == "'":
            has_word = True
            i += 1
            while True:
                if i >= len(inner):
                    raise SyntaxProblem("a single quote is opened and never closed.")
                if inner[i] == "'":
                    if inner[i + 1:i + 2] == "'":
                        current.append("'")
                        i += 2
                        continue
                    i += 1
                    break
                if inner[i] == '"' and inner[i + 1:i + 2] == '"':
                    current.append('"')
                    i += 2
                    continue
                current.append(inner[i])
                i += 1
            continue
        if c.isspace():
            if has_word:
                words.append("".join(current))
                current, has_word = [], False
            i += 1
            continue
        current.append(c)
        has_word = True
        i += 1
    if has_word:
        words.append("".join(current))
    return words


def parse_arguments(value: str) -> list[str]:
    """The argv (after the program) that `arguments = VALUE` gives the job."""
    text = value.strip()
    if not text:
        return []
    if is_new_syntax(text):
        return _split_new(text[1:-1])
    if '"' in text.replace('\\"', ""):
        raise SyntaxProblem("the old syntax (no outer double quotes) cannot hold a bare double "
                            "quote; write the whole value in double quotes (the new syntax).")
    return [w.replace('\\"', '"') for w in text.split()]


def parse_environment(value: str) -> dict[str, str]:
    """The variables `environment = VALUE` sets, in either syntax."""
    text = value.strip()
    if not text:
        return {}
    entries = _split_new(text[1:-1]) if is_new_syntax(text) else [
        e.strip() for e in text.split(";") if e.strip()]
    env: dict[str, str] = {}
    for entry in entries:
        name, eq, val = entry.partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name.strip()):
            raise SyntaxProblem(f"`{entry}` is not NAME=value.")
        env[name.strip()] = val
    return env


def split_list(value: str | None) -> list[str]:
    """A comma-separated file list (`transfer_input_files = a, b/c, d/`); blanks also separate
    entries, as condor_submit reads them."""
    if not value:
        return []
    return [w for w in re.split(r"[,\s]+", value.strip()) if w]


def parse_remaps(value: str | None) -> dict[str, str]:
    """`transfer_output_remaps = "name = dest; name2 = dest2"` as {name: dest}."""
    if not value:
        return {}
    text = value.strip()
    if is_new_syntax(text):
        text = text[1:-1]
    remaps: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        name, eq, dest = part.partition("=")
        if not eq or not name.strip() or not dest.strip():
            raise SyntaxProblem(f"`{part.strip()}` is not `name = destination`.")
        remaps[name.strip()] = dest.strip()
    return remaps


def is_url(entry: str) -> bool:
    return bool(_URL.match(entry))


def truthy(value: str | None, default: bool) -> bool:
    """A submit-file boolean (true/false/yes/no/1/0, any case)."""
    if value is None or not value.strip():
        return default
    return value.strip().strip('"').lower() in ("true", "yes", "1", "t", "y")
