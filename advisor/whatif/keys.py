"""`--vary` changes: parse `KEY=VALUE`, resolve friendly keys against a scenario, apply them.

A change is `KEY=VALUE`; a variant may carry several changes separated by `;`
(`"pool.slots.H100.count=+16; workload.tasks=500"`). Values: `=+N` / `=-N` add, `=*F`
multiplies, anything else replaces (read as a YAML scalar: `true`, `12`, `0.5`, `short`).

Keys are the scenario's dotted keys (docs/DESIGN.md §4.3) with friendly addressing of lists:

* `pool.slots.SEL.KEY` selects a GPU slot class by label (`A100-SXM4-80GB@research-groups`),
  by GPU name or alias, or by a unique prefix of one (`H100` when the pool has only one H100
  model); when a GPU has both a shared and an owned class the shared one is meant unless
  `GPU@owner` says otherwise. `pool.slots[0]` / `pool.slots.0` select by index.
* `pool.tiers.NAME.KEY` selects a length tier by name (`pool.tiers.long.per_user_gpus`).
* `background.KEY` applies to every background entry; `background.NAME.KEY` (or an index)
  to one.
* `....mean=*F` scales any distribution (exponential, lognormal mean; fixed value; weibull
  scale; every value of an empirical one), so `background.arrival.mean=*0.5` doubles demand.

A pool given by name or path is expanded to its mapping before a `pool.` key is changed. A key
that does not exist is an `InputError` with the nearest valid key; a slot selector that matches
no slot class lists the pool's slots.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from advisor.errors import InputError, nearest
from simulator.catalog import Catalog, load_catalog
from simulator.files import parse_yaml
from simulator.overrides import set_key, split_key
from simulator.pool import POOL_KEYS, SLOT_KEYS, TIER_KEYS
from simulator.scenario import (
    BACKGROUND_KEYS,
    CHECKPOINT_KEYS,
    EVICTION_KEYS,
    FAIR_SHARE_KEYS,
    REQUEST_KEYS,
    SCENARIO_KEYS,
    WORKLOAD_KEYS,
    pool_mapping,
)

DIST_KEYS = ("dist", "mean", "value", "cv", "scale", "shape", "values", "source")


# --- the key schema -----------------------------------------------------------------------
# A schema node is LEAF, DIST, FREE (any key, leaf values), a dict of child schemas, or a
# Seq (a list whose entries are selected by a friendly selector).

LEAF = "leaf"
DIST = "dist"
FREE = "free"


@dataclass(frozen=True)
class Seq:
    item: Any
    kind: str  # "slot", "tier", "background", "index"


def _mapping_schema(keys: tuple[str, ...], **children: Any) -> dict[str, Any]:
    return {k: children.get(k, LEAF) for k in keys}


_EVICTION = _mapping_schema(EVICTION_KEYS, time_to_eviction=DIST)
_REQUEST = _mapping_schema(REQUEST_KEYS)
_SLOT = _mapping_schema(SLOT_KEYS, eviction=_EVICTION)
_TIER = _mapping_schema(TIER_KEYS)
_POOL = _mapping_schema(
    POOL_KEYS,
    slots=Seq(_SLOT, "slot"),
    tiers=Seq(_TIER, "tier"),
    eviction={"shared": _EVICTION, "owned": _EVICTION},
    cpu_slots=_mapping_schema(("count", "memory_gb", "max_hours", "source")),
    data_rules=Seq(_mapping_schema(("max_gb", "method", "how", "source")), "index"),
    limits=FREE, fit_table=FREE, assumptions=FREE,
)
_WORKLOAD = _mapping_schema(WORKLOAD_KEYS, arrival=DIST, work_hours=DIST, speed=FREE,
                            request=_REQUEST,
                            checkpoint=_mapping_schema(CHECKPOINT_KEYS))
_BACKGROUND = _mapping_schema(BACKGROUND_KEYS, arrival=DIST, work_hours=DIST, request=_REQUEST)
SCHEMA: dict[str, Any] = _mapping_schema(
    SCENARIO_KEYS, pool=_POOL, eviction=_EVICTION,
    fair_share=_mapping_schema(FAIR_SHARE_KEYS), workload=_WORKLOAD,
    background=Seq(_BACKGROUND, "background"),
)


def valid_keys(schema: Any = None, prefix: str = "") -> list[str]:
    """Every dotted key of the schema (list selectors written as `SEL`), for help and tests."""
    schema = SCHEMA if schema is None else schema
    out: list[str] = []
    if isinstance(schema, Seq):
        return valid_keys(schema.item, f"{prefix}.SEL" if schema.kind != "background" else prefix)
    if schema == DIST:
        return [f"{prefix}.{k}" for k in DIST_KEYS]
    if not isinstance(schema, dict):
        return [prefix]
    for k, child in schema.items():
        out.extend(valid_keys(child, f"{prefix}.{k}" if prefix else k))
    return out


# --- parsing --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    """One `KEY=VALUE`: `op` is set, add or mul; `value` the parsed operand."""

    text: str
    key: str
    op: str
    value: Any


def parse_value(text: str) -> tuple[str, Any]:
    """(op, value) of the right-hand side: `+N`/`-N` add, `*F` multiply, else a YAML scalar."""
    raw = text.strip()
    if raw[:1] in ("+", "-", "*") and len(raw) > 1:
        op = "mul" if raw[0] == "*" else "add"
        number = raw[1:].strip() if op == "mul" else raw
        try:
            value = float(number)
        except ValueError:
            value = None
        if value is not None and math.isfinite(value):
            if op == "add" and float(value).is_integer() and re.fullmatch(r"[+-]?\d+", number):
                return op, int(value)
            return op, value
        if op == "mul":
            raise InputError("--vary", text, "needs a number after `*`.", "write e.g. KEY=*0.5.")
    scalar: Any
    try:  # the input files' YAML reading: 1e3 is a number (YAML 1.2), as in a scenario file
        scalar = parse_yaml(raw, "--vary", text) if raw else None
    except InputError:
        scalar = raw
    if isinstance(scalar, (dict, list)):
        raise InputError("--vary", text, "must be a single value, not a mapping or list.",
                         "change one leaf at a time, e.g. workload.arrival.mean=0.2.")
    return "set", scalar


def parse_variant(text: str) -> list[Change]:
    """The changes of one `--vary` argument (several separated by `;`)."""
    changes = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        if "=" not in part:
            raise InputError("--vary", part, "is not KEY=VALUE.",
                             "write e.g. --vary pool.slots.H100.count=+16.")
        key, value = part.split("=", 1)
        key = key.strip()
        if not key:
            raise InputError("--vary", part, "has no key before `=`.",
                             "write e.g. --vary workload.tasks=500.")
        op, parsed = parse_value(value)
        changes.append(Change(text=part, key=key, op=op, value=parsed))
    if not changes:
        raise InputError("--vary", text, "holds no change.", "write e.g. --vary workload.tasks=500.")
    return changes


# --- resolution -----------------------------------------------------------------------------

def _tokens(key: str) -> list[str]:
    """The parts of a key as text (`pool.slots[0]` → pool, slots, 0): simulator.overrides'
    reading of dotted keys, with the list indexes left as selectors."""
    try:
        return [str(p) for p in split_key(key)]
    except InputError:
        return []


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", str(name).strip().lower())


@dataclass
class Target:
    """Where one change lands: `container[key]`, at `parts` of the scenario mapping (list
    entries by index, as simulator.overrides.set_key takes them), shown to people as `path`."""

    container: dict[str, Any]
    key: str
    path: str
    parts: list[str | int]


class Resolver:
    """Resolves friendly keys against one scenario mapping (which it edits in place)."""

    def __init__(self, scenario: dict[str, Any], catalog: Catalog | None = None) -> None:
        self.d = scenario
        self.catalog = catalog or load_catalog()

    def _error(self, change: Change, problem: str, fix: str,
               suggestions: list[str] | None = None) -> InputError:
        return InputError("--vary", change.text, problem, fix, suggestions=suggestions or [])

    def resolve(self, change: Change) -> list[Target]:
        toks = _tokens(change.key)
        if not toks:
            raise self._error(change, "has no key.", "write e.g. workload.tasks=500.")
        nodes: list[tuple[dict[str, Any], str, list[str | int]]] = [(self.d, "", [])]
        schema: Any = SCHEMA
        i = 0
        while True:
            tok = toks[i]
            if schema == DIST:
                keys: tuple[str, ...] = DIST_KEYS
            elif schema == FREE:
                keys = ()
            else:
                keys = tuple(schema)
            if schema != FREE and tok not in keys:
                where = _schema_path(toks[:i])
                # suggest the whole key with the misspelt part corrected
                raise self._error(
                    change, f"{tok!r} is not a key {'under ' + where if where else 'of a scenario'}.",
                    f"use one of: {', '.join(k for k in keys if k != 'source')}.",
                    [_join([*toks[:i], s, *toks[i + 1:]]) for s in nearest(tok, keys)])
            child = LEAF if schema in (FREE, DIST) else schema[tok]
            last = i == len(toks) - 1
            if last:
                if isinstance(child, (dict, Seq)):
                    raise self._error(change, f"{_schema_path(toks)!r} is a section, not a value.",
                                      "name one value inside it, e.g. "
                                      f"{(valid_keys(child, _schema_path(toks)) or ['?'])[0]}.")
                return [Target(node, tok, f"{path}.{tok}" if path else tok, [*parts, tok])
                        for node, path, parts in nodes]
            # descend
            new_nodes: list[tuple[dict[str, Any], str, list[str | int]]] = []
            consumed = False
            for node, path, parts in nodes:
                here = f"{path}.{tok}" if path else tok
                value = self._container(node, tok, child, change)
                if isinstance(child, Seq):
                    if isinstance(value, dict):  # a single background mapping
                        new_nodes.append((value, here, [*parts, tok]))
                        continue
                    picked, consumed = self._select(value, child, toks[i + 1], node, change, here)
                    new_nodes.extend((n, shown, [*parts, tok, j]) for n, shown, j in picked)
                else:
                    new_nodes.append((value, here, [*parts, tok]))
            if isinstance(child, Seq):
                schema = child.item
                if consumed:
                    i += 1
                    if i == len(toks) - 1:
                        raise self._error(change, f"{change.key!r} names a whole list entry.",
                                          "name one value inside it, e.g. "
                                          f"{change.key}.count.")
            else:
                schema = child
            nodes = new_nodes
            i += 1

    def _container(self, node: dict[str, Any], tok: str, child: Any, change: Change) -> Any:
        value = node.get(tok)
        if tok == "pool" and node is self.d:
            if not isinstance(value, Mapping):
                node[tok] = pool_mapping(value)
            return node[tok]
        if isinstance(child, Seq):
            if isinstance(value, list) and value:
                return value
            if isinstance(value, dict) and child.kind == "background":
                return value
            raise self._error(change, f"{tok!r} holds no entries to change.",
                              f"add {tok} to the scenario first.")
        if child == DIST:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                node[tok] = {"dist": "fixed", "value": value}
            elif not isinstance(value, dict):
                raise self._error(change, f"{tok!r} has no distribution to change.",
                                  f"give {tok} in the scenario first, e.g. {{dist: exponential, mean: 1}}.")
            return node[tok]
        if not isinstance(value, dict):
            node[tok] = {}  # absent, null or `none`: start an empty mapping
        return node[tok]

    def _select(self, items: list[Any], seq: Seq, tok: str, parent: dict[str, Any], change: Change,
                path: str) -> tuple[list[tuple[dict[str, Any], str, int]], bool]:
        """((entry, shown path, index) of each entry picked by the selector `tok`, consumed?)."""
        if tok.isdigit():
            k = int(tok)
            if k >= len(items):
                raise self._error(change, f"index {k} is out of range ({len(items)} entries).",
                                  f"use 0 to {len(items) - 1}.")
            return [(items[k], f"{path}[{k}]", k)], True
        if seq.kind == "background":
            if tok in seq.item:
                return [(b, f"{path}[{j}]", j) for j, b in enumerate(items)], False
            names = [str(b.get("name", f"background{j}" if j else "background")) for j, b in enumerate(items)]
            hits = [j for j, n in enumerate(names) if n.lower() == tok.lower()]
            if not hits:
                raise self._error(change, f"{tok!r} is neither a background key nor a background entry.",
                                  f"use one of the keys ({', '.join(BACKGROUND_KEYS)}) or entries "
                                  f"({', '.join(names)}).", nearest(tok, [*BACKGROUND_KEYS, *names]))
            return [(items[hits[0]], f"{path}[{hits[0]}]", hits[0])], True
        if seq.kind == "tier":
            names = [str(t.get("name", "")) for t in items]
            hits = [j for j, n in enumerate(names) if n.lower() == tok.lower()]
            if not hits:
                raise self._error(change, f"{tok!r} is not a tier of the pool ({', '.join(names)}).",
                                  "select a tier by name, e.g. pool.tiers.long.max_hours.",
                                  nearest(tok, names))
            return [(items[hits[0]], f"{path}[{names[hits[0]]}]", hits[0])], True
        if seq.kind == "slot":
            j = self.select_slot(items, tok, change)
            return [(items[j], f"{path}[{self.slot_labels(items)[j][0]}]", j)], True
        raise self._error(change, f"entries of {path!r} are selected by index.", f"write {path}.0.KEY.")

    # slots ----------------------------------------------------------------------------------
    def slot_labels(self, slots: list[Any]) -> list[tuple[str, str, str]]:
        """(label, catalog GPU name, owner) of each raw slot entry."""
        out = []
        for s in slots:
            gpu = str(s.get("gpu", ""))
            name = self.catalog.get(gpu).name if gpu in self.catalog else gpu
            owner = str(s.get("owner", "shared"))
            label = str(s.get("label") or (name if owner == "shared" else f"{name}@{owner}"))
            out.append((label, name, owner))
        return out

    def select_slot(self, slots: list[Any], tok: str, change: Change) -> int:
        info = self.slot_labels(slots)
        labels = [lab for lab, _, _ in info]
        for j, (lab, _, _) in enumerate(info):
            if _norm(lab) == _norm(tok):
                return j
        gpu_tok, _, owner = tok.partition("@")
        cands = [j for j, (_, _, own) in enumerate(info) if not owner or _norm(own) == _norm(owner)]
        t = _norm(gpu_tok)
        exact: set[str] = set()
        if gpu_tok in self.catalog:
            exact = {self.catalog.get(gpu_tok).name}
        matched = [j for j in cands if info[j][1] in exact]
        if not matched:
            matched = [j for j in cands if self._gpu_prefix(info[j][1], t)]
        gpus = sorted({info[j][1] for j in matched})
        pool_list = ", ".join(labels)
        if not gpus:
            raise self._error(change, f"{tok!r} matches no GPU slot class of the pool "
                                      f"(its slots: {pool_list}).",
                              "select a slot by one of those labels, a GPU name, or an index.",
                              nearest(tok, labels))
        if len(gpus) > 1:
            raise self._error(change, f"{tok!r} is ambiguous: it matches {', '.join(gpus)}.",
                              "name the GPU in full (or the slot's label).", gpus)
        if len(matched) > 1:
            shared = [j for j in matched if info[j][2] == "shared"]
            if len(shared) == 1:
                return shared[0]
            which = ", ".join(labels[j] for j in matched)
            raise self._error(change, f"{tok!r} matches several slot classes ({which}).",
                              "name the slot by its label (GPU@owner).", [labels[j] for j in matched])
        return matched[0]

    def _gpu_prefix(self, gpu: str, t: str) -> bool:
        if not t:
            return False
        names = [gpu]
        if gpu in self.catalog:
            names += list(self.catalog.get(gpu).aliases)
        for n in names:
            k = _norm(n)
            if k.startswith(t) or k.startswith("nvidia" + t) or k.startswith("tesla" + t):
                return True
        return False


def _join(toks: list[str]) -> str:
    return ".".join(toks)


def _schema_path(toks: list[str]) -> str:
    """The schema path of a token list with list selectors left out (for messages)."""
    out: list[str] = []
    schema: Any = SCHEMA
    i = 0
    while i < len(toks):
        tok = toks[i]
        out.append(tok)
        child = schema.get(tok, LEAF) if isinstance(schema, dict) else LEAF
        if isinstance(child, Seq):
            schema = child.item
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            if nxt is not None and not (child.kind == "background" and nxt in child.item):
                i += 1  # a selector
        else:
            schema = child
        i += 1
    return ".".join(out)


# --- applying -------------------------------------------------------------------------------

def _scale_dist(dist: dict[str, Any], factor: float) -> str:
    kind = dist.get("dist")
    if kind in ("exponential", "lognormal"):
        dist["mean"] = float(dist["mean"]) * factor
        return "mean"
    if kind == "fixed":
        dist["value"] = float(dist["value"]) * factor
        return "value"
    if kind == "weibull":
        dist["scale"] = float(dist["scale"]) * factor
        return "scale"
    if kind == "empirical":
        dist["values"] = [float(v) * factor for v in dist["values"]]
        return "values"
    raise KeyError(kind)


def _show(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list):
        return f"[{len(v)} values]"
    return str(v)


def apply_change(d: dict[str, Any], change: Change, catalog: Catalog | None = None) -> list[str]:
    """Apply one change to the scenario mapping `d` in place; returns what changed, for people."""
    resolver = Resolver(d, catalog)
    done = []
    for t in resolver.resolve(change):
        c, key = t.container, t.key
        is_dist = set(c) & {"dist"} and key in DIST_KEYS
        if is_dist and key == "mean" and "mean" not in c and c.get("dist") != "exponential":
            if change.op != "mul":
                raise InputError("--vary", change.text,
                                 f"{t.path} is a {c.get('dist')} distribution without a mean to set.",
                                 "scale it with =*F, or set its own parameters "
                                 "(value, scale, values).")
            before = copy.deepcopy(c)
            param = _scale_dist(c, float(change.value))
            done.append(f"{t.path.rsplit('.', 1)[0]}.{param}: {_show(before[param])} → "
                        f"{_show(c[param])} (×{change.value:g})")
            continue
        old = c.get(key)
        if change.op == "set":
            new = change.value
        else:
            if isinstance(old, bool) or not isinstance(old, (int, float)):
                raise InputError("--vary", change.text,
                                 f"{t.path} is {old!r}, not a number to "
                                 f"{'add to' if change.op == 'add' else 'multiply'}.",
                                 f"set it instead: {change.key}=VALUE.")
            new = old + change.value if change.op == "add" else old * change.value
            if isinstance(old, int) and float(new).is_integer():
                new = int(new)
        set_key(d, t.parts, new)
        done.append(f"{t.path}: {_show(old) if old is not None else '(unset)'} → {_show(new)}")
    return done


__all__ = ["Change", "Resolver", "SCHEMA", "apply_change", "parse_value", "parse_variant",
           "pool_mapping", "valid_keys"]
