"""Quoting every user-derived value an emitter writes, so that no value can add a line.

A workload's or profile's strings (name, script, arguments, data paths, container image, output
names) and a pool file's strings reach the written files. The loaders refuse control characters;
this module makes the emitters safe whatever reaches them:

* shell (run.sh, the checkpoint wrapper, the Slurm script): `shell_quote` (POSIX single quotes,
  bash `$'...'` when a value holds a control character, so the word stays on its line);
* HTCondor submit values: `submit_value` refuses newline, CR, NUL and other control characters
  (the submit language has no escape for them) and writes `$` as `$(DOLLAR)` so a value cannot
  expand a submit macro (`$ENV(...)`, `$(...)`); lists (`transfer_input_files`) refuse commas,
  which HTCondor always reads as separators; `submit_arguments` writes the manual's new
  syntax (double quotes around all, `'...'` around a word with spaces, `""` and `''` inside);
* comments in any format: `comment` keeps a text on one line (control characters shown as
  `\\n`, `\\x1b`);
* Kubernetes: the emitter dumps structures with yaml.SafeDumper (never text templates).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

from advisor.errors import InputError

# Characters no written line may carry: C0 controls except tab, DEL, and the Unicode line breaks.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
_SUBMIT_NAME = re.compile(r"^\+?[A-Za-z_][A-Za-z0-9_]*$")


def has_control(value: str) -> bool:
    return _CONTROL.search(value) is not None


def _visible(ch: str) -> str:
    return {"\n": "\\n", "\r": "\\r", "\0": "\\0"}.get(ch, f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")


def comment(text: object) -> str:
    """`text` for a `#` comment: one line, control characters shown escaped (`\\n`)."""
    return _CONTROL.sub(lambda m: _visible(m.group(0)), str(text))


def refuse_control(value: str, field: str) -> str:
    """`value`, or InputError naming `field` when it holds a newline, CR, NUL or other control."""
    m = _CONTROL.search(value)
    if m:
        raise InputError(field, value, f"contains a control character ({_visible(m.group(0))}), "
                         "which would start a new line (or end the value) in the written file.",
                         "remove line breaks and control characters from it.")
    return value


def shell_quote(value: str) -> str:
    """One shell word for bash: shlex.quote, or `$'...'` when `value` holds control characters."""
    if not has_control(value):
        return shlex.quote(value)
    out = []
    for ch in value:
        if ch in "\\'":
            out.append("\\" + ch)
        elif _CONTROL.match(ch) or ch == "\t":
            code = ord(ch)
            out.append(_visible(ch) if code < 256 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "$'" + "".join(out) + "'"


def split_words(arguments: str, field: str) -> list[str]:
    """Shell-like words of an argument string (InputError on an unbalanced quote)."""
    try:
        return shlex.split(arguments)
    except ValueError as exc:
        raise InputError(field, arguments, f"cannot be split into words ({exc}).",
                         "balance the quotes, e.g. --tag \"a b\".") from None


def shell_words(arguments: str, field: str) -> str:
    """An argument string as quoted shell words: each word literal, nothing expanded."""
    return " ".join(shell_quote(w) for w in split_words(arguments, field))


def submit_value(value: object, field: str, *, macros: bool = False) -> str:
    """A value for `command = value` in a submit file.

    Refuses control characters and surrounding blanks (HTCondor trims them); `$` becomes
    `$(DOLLAR)` unless `macros` (values the emitter builds with `$(Cluster)` and the like).
    """
    text = refuse_control(str(value), field)
    if text != text.strip():
        raise InputError(field, text, "starts or ends with blanks, which HTCondor drops.",
                         "remove the leading and trailing spaces.")
    return text if macros else text.replace("$", "$(DOLLAR)")


def submit_list(items: Iterable[str], field: str) -> str:
    """A comma-separated submit list (`transfer_input_files`): an item may not hold a comma."""
    out = []
    for i, item in enumerate(items):
        name = f"{field}[{i}]"
        text = submit_value(item, name)
        if "," in text:
            raise InputError(name, text, f"contains a comma, which {field} always reads as a "
                             "separator (HTCondor has no way to escape it).",
                             "rename the file (or pack it into an archive) without commas.")
        if not text:
            raise InputError(name, text, "is empty.", "give a file name.")
        out.append(text)
    return ", ".join(out)


def submit_string(value: str, field: str) -> str:
    """A ClassAd string literal (`+GPUJobLength = "short"`): `"` and `\\` escaped."""
    text = submit_value(value, field)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def submit_name(name: str, field: str) -> str:
    """A submit command or `+Attribute` name: letters, digits and `_` only."""
    if not _SUBMIT_NAME.match(name):
        raise InputError(field, name, "is not a submit command or +Attribute name.",
                         "use letters, digits and _ only, e.g. +GPUJobLength.")
    return name


def submit_arguments(arguments: str, field: str = "arguments") -> str:
    """`arguments` in the submit file's new syntax (HTCondor manual, condor_submit `arguments`):
    the whole in double quotes, a word with blanks or `'` in single quotes, `"` as `""` and `'`
    inside a quoted word as `''`; `$` as `$(DOLLAR)`."""
    refuse_control(arguments, field)
    words = []
    for w in split_words(arguments, field):
        w = w.replace('"', '""')
        if not w or re.search(r"[\s']", w):
            w = "'" + w.replace("'", "''") + "'"
        words.append(w)
    return submit_value('"' + " ".join(words) + '"', field)


def submit_queue_items_file(path: str, field: str = "items_file") -> str:
    """The file of `queue item from FILE`: a plain file name, never a command (`... |`)."""
    text = submit_value(path, field, macros=True)
    if text.endswith("|") or "$" in text or not text:
        raise InputError(field, text, "is not a plain file name (a trailing | runs a command, "
                         "$ expands a macro).", "name the file that lists one item per line.")
    return text




def shell_command(words: Iterable[str]) -> str:
    """A command line of literal words; a `<secret:NAME>` placeholder inside a word becomes
    `"$(cat secrets/NAME)"`, read when the script runs (never written into it)."""
    from advisor.check.secrets import PLACEHOLDER, SECRETS_DIR

    out = []
    for word in words:
        pieces, pos = [], 0
        for m in PLACEHOLDER.finditer(word):
            if m.start() > pos:
                pieces.append(shell_quote(word[pos:m.start()]))
            pieces.append(f'"$(cat {SECRETS_DIR}/{m.group(1)})"')
            pos = m.end()
        if pos < len(word) or not pieces:
            pieces.append(shell_quote(word[pos:]))
        out.append("".join(pieces))
    return " ".join(out)


def secrets_read(command: str) -> list[str]:
    """The secret files (`secrets/NAME`) a command written by `shell_command` reads."""
    from advisor.check.secrets import SECRETS_DIR

    return list(dict.fromkeys(re.findall(rf'"\$\(cat {SECRETS_DIR}/([a-z0-9_]+)\)"', command)))


__all__ = ["comment", "has_control", "refuse_control", "secrets_read", "shell_command", "shell_quote",
           "shell_words", "split_words", "submit_arguments", "submit_list", "submit_name",
           "submit_queue_items_file", "submit_string", "submit_value"]
