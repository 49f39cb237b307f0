"""Reading a submit file without letting it do anything: the pass before HTCondor's parser.

`htcondor2.Submit(text)` runs what the submit language tells it to while it reads: `include :
CMD |`, `include command : CMD` and `include command into FILE : CMD` run CMD (the HTCondor
manual, "include" in condor_submit and the configuration chapter; the target is macro-expanded,
so `include : $(X)` runs whatever X holds), `include : FILE` reads any file, and a macro that
refers to itself through others (`A = $(B)`, `B = $(A)`) makes every expansion loop forever.
`advisor check` reviews other people's files, so before the bindings see a byte this pass

* joins continued lines the way HTCondor does (the backslash removed, the next line's leading
  blanks dropped; a blank or comment line ends the statement) and hands the bindings one
  statement per line, so that HTCondor cannot join lines differently from what was checked;
* drops every include statement (any keyword, any target, also inside `@=` blocks and behind the
  `:` and `@` prefixes HTCondor accepts) and turns `queue ... from CMD |` into `queue`;
* drops the assignments on a macro cycle and those whose expansion would exceed
  MAX_EXPANSION characters (a "billion laughs" of nested macros);

and reports each as a finding. Line numbers are kept (dropped lines become blank lines).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from advisor.check.findings import Finding
from advisor.check.secrets import redact
from advisor.errors import InputError

MAX_EXPANSION = 1_000_000   # characters one macro may expand to
MAX_STATEMENT = 100_000     # characters in one logical statement

# `include` as HTCondor reads it: the first word (after the `:` an if-body line may start with,
# and the optional `@`), followed by keywords (command, ifexist, into FILE) and a `:`.
_INCLUDE = re.compile(r"(?i)^[\s:]*@?include(?=[\s:=@]|$)(?P<rest>.*)$")
_QUEUE = re.compile(r"(?i)^\s*queue(?:\s+(?P<args>.*))?$")
_HEREDOC = re.compile(r"^\s*(?P<name>[A-Za-z_+][A-Za-z0-9_.+\-]*)\s*@=\s*(?P<tag>\S*)\s*$")
_ASSIGN = re.compile(r"^\s*(?P<name>[A-Za-z_+][A-Za-z0-9_.+\-]*)\s*=(?P<value>.*)$")
# $(name), $(name:default), $INT(name), $F(name), $SUBSTR(name,...); not $$(attr) (match time)
# and not $ENV(...)/$RANDOM_*(...), whose arguments are not macro names.
_REF = re.compile(r"(?<!\$)\$(?P<fn>[A-Za-z_]*)\(\s*(?P<name>[A-Za-z_][A-Za-z0-9_.]*)")
_NOT_MACRO_FUNCTIONS = {"env", "random_integer", "random_choice"}


@dataclass(frozen=True)
class Statement:
    first: int    # 1-based line numbers
    last: int
    text: str


@dataclass
class Neutralised:
    """The file as the line scan reads it, as the bindings may read it, and what was removed."""

    scan_text: str
    bindings_text: str
    findings: list[Finding] = field(default_factory=list)


def _finding(code: str, severity: str, line: int | None, command: str, message: str, fix: str) -> Finding:
    return Finding(code, severity, line, command, redact(message), redact(fix))


def _short(text: str, n: int = 80) -> str:
    text = redact(text.strip())
    return text if len(text) <= n else text[:n - 1] + "…"


def physical_lines(text: str, path: str) -> list[str]:
    """Lines as HTCondor splits them: at `\\n` only (a CRLF's CR dropped; a lone CR is a blank)."""
    if "\0" in text:
        raise InputError("submit file", path, "contains NUL bytes: not a text submit file.",
                         "give the submit description as plain text.")
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def statements(lines: list[str]) -> list[Statement | None]:
    """One entry per physical line: the statement starting there, or None (blank, comment,
    or a line joined into an earlier statement). HTCondor's rules (checked against the bindings):
    a trailing `\\` (blanks after it allowed) continues; the next line's leading blanks are
    dropped; a blank line or a comment line ends the statement unless the comment itself ends
    with `\\`, in which case it is skipped and the statement goes on; a `\\` on the last line stays."""
    out: list[Statement | None] = [None] * len(lines)
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        first, parts = i, []
        current = line.lstrip()
        while True:
            body = current.rstrip()
            if body.endswith("\\") and i + 1 < len(lines):
                parts.append(body[:-1])
                i += 1
                nxt = lines[i].strip()
                while nxt.startswith("#") and nxt.endswith("\\") and i + 1 < len(lines):
                    i += 1       # a commented-out continuation line: skipped, the statement goes on
                    nxt = lines[i].strip()
                if not nxt or nxt.startswith("#"):
                    break        # a blank or comment line ends the statement
                current = lines[i].lstrip()
                continue
            parts.append(current.rstrip("\r"))
            break
        text = "".join(parts)
        if len(text) > MAX_STATEMENT:
            raise InputError(f"line {first + 1}", text[:40] + "…",
                             f"is a statement of {len(text):,} characters (more than {MAX_STATEMENT:,}).",
                             "split it; no submit command needs values this long.")
        out[first] = Statement(first + 1, i + 1, text)
        i += 1
    return out


def _norm(name: str) -> str:
    name = name.strip().lower()
    return "my." + name[1:] if name.startswith("+") else name


def _refs(value: str, self_name: str | None) -> tuple[set[str], bool]:
    """Macro names `value` refers to, and whether it refers to `self_name` as a plain `$(NAME)`
    (which HTCondor replaces by the previous value when the line is read)."""
    names: set[str] = set()
    plain_self = False
    for m in _REF.finditer(value):
        if m.group("fn").lower() in _NOT_MACRO_FUNCTIONS:
            continue
        name = m.group("name").lower()
        if self_name is not None and name == self_name and not m.group("fn"):
            tail = value[m.end():].lstrip()
            if tail.startswith(")"):
                plain_self = True
                continue
        names.add(name)
    return names, plain_self


def _cycles(graph: dict[str, set[str]]) -> set[str]:
    """Names on a cycle (iterative Tarjan: files may chain thousands of macros)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cyclic: set[str] = set()
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == node:
                        break
                if len(component) > 1 or node in graph.get(node, set()):
                    cyclic.update(component)
    return cyclic


def _expansion_sizes(graph: dict[str, set[str]], literal: dict[str, int],
                     count: dict[str, Counter[str]]) -> dict[str, int]:
    """Characters each (acyclic) macro expands to, at most (capped just past MAX_EXPANSION);
    `count[name][ref]`: how often `name` refers to `ref`."""
    size: dict[str, int] = {}
    for root in graph:
        if root in size:
            continue
        work = [root]
        while work:
            node = work[-1]
            pending = [c for c in graph.get(node, ()) if c in graph and c not in size]
            if pending:
                work.extend(pending)
                continue
            work.pop()
            if node not in size:
                total = literal.get(node, 0) + sum(size.get(c, 0) * count[node][c]
                                                   for c in graph.get(node, ()))
                size[node] = min(total, MAX_EXPANSION + 1)
    return size


def neutralise(text: str, path: str = "<submit file>") -> Neutralised:
    """The text with nothing left that runs a command, reads a file or expands forever."""
    lines = physical_lines(text, path)
    stmts = statements(lines)
    scan = [""] * len(lines)
    findings: list[Finding] = []
    queue_replacements: dict[int, str] = {}
    # (line index, normalised name, raw value) of each assignment, in order
    assigns: list[tuple[int, str, str]] = []
    here: tuple[int, str, str, list[str]] | None = None   # (index, name, tag, body)
    for idx, st in enumerate(stmts):
        if st is None:
            continue
        body = st.text.strip()
        inc = _INCLUDE.match(body)
        if inc and not re.match(r"^\s*(=|@=)", inc.group("rest")):
            findings.append(_include_finding(st, inc.group("rest")))
            continue   # dropped: never handed to the bindings
        if here is not None:
            if body == "@" + here[2]:
                assigns.append((here[0], here[1], "\n".join(here[3])))
                here = None
            else:
                here[3].append(body)
            scan[idx] = st.text
            continue
        scan[idx] = st.text
        h = _HEREDOC.match(body)
        if h:
            here = (idx, _norm(h.group("name")), h.group("tag"), [])
            continue
        q = _QUEUE.match(body)
        if q and "=" not in body.split(None, 1)[0]:
            args = (q.group("args") or "").strip()
            if re.search(r"(?i)\bfrom\b", args) and args.rstrip().endswith("|"):
                findings.append(_finding(
                    "command-include", "error", st.first, "queue",
                    f"`{_short(body)}` takes its items from the output of a command, which "
                    "condor_submit runs on the access point when it reads the file; advisor check "
                    "did not run it.",
                    "list the items in a file (`queue item from items.txt`) or inline "
                    "(`queue item in (a, b)`), and read any command you did not write first."))
                queue_replacements[idx] = "queue"
            continue
        a = _ASSIGN.match(body)
        if a and not body.lower().startswith(("if ", "elif ")):
            assigns.append((idx, _norm(a.group("name")), a.group("value")))
    drop = _macro_findings(assigns, stmts, findings)
    bindings = list(scan)
    for idx in drop:
        bindings[idx] = ""
    for idx, replacement in queue_replacements.items():
        bindings[idx] = replacement
    return Neutralised("\n".join(scan) + "\n", "\n".join(bindings) + "\n", findings)


def _include_finding(st: Statement, rest: str) -> Finding:
    keywords, _, target = rest.partition(":")
    words = keywords.lower().split()
    target = target.strip()
    shown = _short(st.text)
    if "command" in words or target.endswith("|"):
        return _finding(
            "command-include", "error", st.first, "include",
            f"`{shown}` runs a command when condor_submit reads the file (its output becomes "
            "part of the submit description). advisor check did not run it and reviewed the file "
            "without it.",
            "read the command before submitting a file you did not write; write its output "
            "into the file instead (`include : settings.sub`), or remove the line.")
    if "$" in target or "into" in words:
        return _finding(
            "command-include", "error", st.first, "include",
            f"`{shown}` includes what a macro or file names at submit time, which may be a command "
            "(a target ending in `|` runs it). advisor check did not expand or run it.",
            "name the included file literally, or remove the line.")
    return _finding(
        "include-file", "warning", st.first, "include",
        f"`{shown}` includes {target or 'a file'}, which advisor check does not read: the "
        "commands in it are not reviewed (and condor_submit fails if it is missing).",
        "review that file too (`advisor check` it on its own), or paste its lines into this file.")


def _macro_findings(assigns: list[tuple[int, str, str]], stmts: list[Statement | None],
                    findings: list[Finding]) -> set[int]:
    """Findings for macro cycles and expansion bombs; the line indexes to drop."""
    graph: dict[str, set[str]] = {}
    literal: dict[str, int] = {}
    count: dict[str, Counter[str]] = {}
    where: dict[str, list[int]] = {}
    for idx, name, value in assigns:
        refs, plain_self = _refs(value, name if not name.startswith("my.") else None)
        times = Counter(m.group("name").lower() for m in _REF.finditer(value))
        if plain_self:   # $(NAME) is replaced by the previous value
            refs |= graph.get(name, set())
            times.update(count.get(name, Counter()))
        graph[name] = refs
        count[name] = times
        literal[name] = len(_REF.sub("", value)) + (literal.get(name, 0) if plain_self else 0)
        where.setdefault(name, []).append(idx)
    drop: set[int] = set()
    cyclic = _cycles(graph)
    for name in sorted(cyclic, key=lambda n: where[n][-1]):
        idx = where[name][-1]
        st = stmts[idx]
        others = sorted(r for r in graph[name] if r in cyclic)
        findings.append(_finding(
            "macro-cycle", "error", st.first if st else None, name,
            f"{name} refers to itself through {', '.join(others)}: expanding it never ends "
            "(condor_submit hangs or fails on it). advisor check reviewed the file without "
            "the macros on the cycle.",
            "give one of the macros on the cycle a plain value."))
        drop.update(where[name])
    acyclic = {n: {r for r in refs if r not in cyclic} for n, refs in graph.items() if n not in cyclic}
    sizes = _expansion_sizes(acyclic, literal, count)
    big = sorted((n for n, size in sizes.items() if size > MAX_EXPANSION), key=lambda n: where[n][-1])
    if big:
        # reported once, at the macro where the expansion first crosses the limit
        first = next(n for n in big if all(sizes.get(r, 0) <= MAX_EXPANSION for r in acyclic[n]))
        st = stmts[where[first][-1]]
        names = ", ".join(big[:5]) + (f" and {len(big) - 5} more" if len(big) > 5 else "")
        findings.append(_finding(
            "macro-too-large", "error", st.first if st else None, first,
            f"{names} expand to more than {MAX_EXPANSION:,} characters (macros nested inside "
            "macros many times): condor_submit would exhaust memory; advisor check did not "
            "expand them.",
            "write the values out instead of nesting macros."))
        for name in big:
            drop.update(where[name])
    return drop


__all__ = ["MAX_EXPANSION", "Neutralised", "neutralise", "physical_lines", "statements"]
