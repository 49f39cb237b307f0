"""The one safe reader of input files: text, YAML and JSON.

Every loader (catalog, pool, scenario, workload, profile) reads its file here, so a hostile or
careless file meets the same limits and messages everywhere; each problem is a `ConfigError`
(exit 2) naming the file, never a traceback:

* a missing path, a directory, a file that cannot be read (permission denied) or is not UTF-8;
* a file larger than `MAX_INPUT_BYTES` (checked while reading, so `/dev/zero` stops too);
* YAML or JSON with a duplicate key (the second value would silently win), naming the key;
* nesting deeper than `MAX_DEPTH` (no RecursionError in a later deep copy or walk);
* YAML aliases that expand to more than `MAX_ALIAS_NODES` extra nodes (an "alias bomb") or
  that refer to themselves.

YAML numbers are read in both the 1.1 and the 1.2 forms: `1e-3` and `5E6` are floats here,
where PyYAML's 1.1 resolver alone reads them as strings. libyaml parses when it is installed
(a 5 MB scalar takes milliseconds there, seconds in pure Python).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from simulator.errors import ConfigError

MAX_INPUT_BYTES = 50 * 1000**2   # no input of this project is near this; a bigger file is a mistake
MAX_DEPTH = 64                   # the deepest shipped input nests 5 levels
MAX_ALIAS_NODES = 100_000        # nodes that aliases may add to a YAML document

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):
    """SafeLoader (libyaml when present) that also resolves YAML 1.2 floats such as `1e-3`."""


# YAML 1.2 core schema floats without a dot (1e3, -2E-5); the 1.1 resolver requires a dot.
# Added after the int resolver, so `12` stays an int.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def _size_text(n: float) -> str:
    return f"{n / 1000**2:.1f} MB" if n >= 1000**2 else f"{n / 1000:.0f} kB"


def read_text(path: str | Path, what: str, fix: str, *, max_bytes: int | None = None) -> str:
    """The UTF-8 text of the input file `path` (at most `max_bytes`, by default
    MAX_INPUT_BYTES); every failure is a ConfigError naming `what`."""
    max_bytes = MAX_INPUT_BYTES if max_bytes is None else max_bytes
    p = Path(path)
    where = str(p)
    try:
        if p.is_dir():
            raise ConfigError(what, where, "is a directory, not a file.", fix)
        with p.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except ConfigError:
        raise
    except FileNotFoundError:
        raise ConfigError(what, where, "no such file.", fix) from None
    except PermissionError:
        raise ConfigError(what, where, "cannot be read: permission denied.",
                          f"make it readable (chmod u+r {where}) or give another file.") from None
    except IsADirectoryError:
        raise ConfigError(what, where, "is a directory, not a file.", fix) from None
    except OSError as exc:
        raise ConfigError(what, where, f"cannot be read ({exc.strerror or exc}).", fix) from None
    if len(data) > max_bytes:
        raise ConfigError(what, where, f"is larger than the {_size_text(max_bytes)} an input file "
                          "may be.", f"give the {what} file itself (inputs are small text files).")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(what, where, f"is not UTF-8 text (byte {exc.start}).",
                          f"give a UTF-8 text {what} file.") from None


# --- YAML -------------------------------------------------------------------------------------

def _line(node: Any) -> str:
    mark = getattr(node, "start_mark", None)
    return f"line {mark.line + 1}" if mark is not None else "an unknown line"


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.MappingNode):
        return [x for pair in node.value for x in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_duplicates(node: yaml.MappingNode, what: str, where: str) -> None:
    seen: dict[tuple[str, str], Any] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        ident = (key.tag, key.value)
        if ident in seen:
            raise ConfigError(what, where, f"repeats the key {key.value!r} ({_line(key)}; first on "
                              f"{_line(seen[ident])}): the second value would silently win.",
                              "keep one of the two entries.")
        seen[ident] = key


def _check_tree(root: Any, what: str, where: str) -> None:
    """Depth, duplicate keys, alias expansion and self-reference, in one pass over the nodes
    (each distinct node once: an alias is a second reference to a node already seen)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    ancestors: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0) if kids or \
                not isinstance(node, yaml.ScalarNode) else 0
            ancestors.discard(key)
            if depth[key] > MAX_DEPTH:
                raise ConfigError(what, where, f"nests deeper than {MAX_DEPTH} levels "
                                  f"(from {_line(node)}).", "flatten the structure; no input "
                                  "of this tool nests more than a few levels.")
            continue
        if key in size:
            continue
        if key in ancestors:
            raise ConfigError(what, where, f"has an alias that refers to itself ({_line(node)}).",
                              "write the values out instead of the alias.")
        ancestors.add(key)
        if isinstance(node, yaml.MappingNode):
            _check_duplicates(node, what, where)
        stack.append((node, True))
        stack.extend((k, False) for k in reversed(_children(node)))
    extra = size[id(root)] - len(size)
    if extra > MAX_ALIAS_NODES:
        raise ConfigError(what, where, f"has aliases that expand to {extra:,} extra values "
                          f"(the limit is {MAX_ALIAS_NODES:,}).",
                          "write the document without nested anchors and aliases (*name).")


def parse_yaml(text: str, what: str, where: str) -> Any:
    """The data of one YAML document held in `text` (`where` names it in messages)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_tree(node, what, where)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        fix = "fix the YAML syntax (indentation, colons, quotes)."
        if "nesting depth" in str(problem):  # libyaml's own limit (1000 levels)
            problem, fix = f"it nests deeper than {MAX_DEPTH} levels", "flatten the structure."
        raise ConfigError(what, where, f"is not valid YAML{line}: {problem}.", fix) from None
    except RecursionError:  # the pure-Python parser, without libyaml
        raise ConfigError(what, where, f"nests deeper than {MAX_DEPTH} levels.",
                          "flatten the structure.") from None
    finally:
        loader.dispose()


def read_yaml(path: str | Path, what: str) -> Any:
    """Read and parse a YAML input file with the limits above."""
    text = read_text(path, what, f"give the path of a {what} YAML file.")
    return parse_yaml(text, what, str(path))


# --- JSON -------------------------------------------------------------------------------------

class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _json_depth_ok(data: Any) -> bool:
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            if level >= MAX_DEPTH:
                return False
            stack.extend((v, level + 1) for v in (node.values() if isinstance(node, dict) else node))
    return True


def parse_json(text: str, what: str, where: str, fix: str) -> Any:
    """The data of the JSON document `text`, with the limits above."""
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise ConfigError(what, where, f"repeats the key {exc.key!r}: the second value would "
                          "silently win.", "keep one of the two entries.") from None
    except RecursionError:
        data = None
        deep = True
    except ValueError as exc:  # JSONDecodeError, or an integer with too many digits
        raise ConfigError(what, where, f"is not valid JSON ({exc}).", fix) from None
    else:
        deep = not _json_depth_ok(data)
    if deep:
        raise ConfigError(what, where, f"nests deeper than {MAX_DEPTH} levels.",
                          "flatten the structure; " + fix)
    return data


def read_json(path: str | Path, what: str, fix: str) -> Any:
    """Read and parse a JSON input file with the limits above."""
    text = read_text(path, what, fix)
    return parse_json(text, what, str(path), fix)


__all__ = ["MAX_ALIAS_NODES", "MAX_DEPTH", "MAX_INPUT_BYTES", "parse_json", "parse_yaml",
           "read_json", "read_text", "read_yaml"]
