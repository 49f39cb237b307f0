"""Hypothesis-generated bad inputs for every input format: workload, scenario, pool, profile,
submit file, event log, trace CSV.

Each example mutates a valid file (a value replaced by a hostile one, a key dropped or added,
lines deleted, duplicated or garbled, bytes inserted), writes it into a fresh output directory
and runs the real command line in this process (`advisor.cli.main`). Asserted: exit 0, 1 or 2
(0 when the mutation happens to be valid), no traceback and no Python error name on stderr,
stdout one JSON document, time bounded by hypothesis' deadline, and no file written anywhere
but the output directory (the command runs there; the temporary directory is redirected and
must stay empty; nothing else appears beside them).

100 examples per format in the default run; 1,000 per format with `-m slow`.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.cli import main

REPO = Path(__file__).resolve().parents[1]
BASE = {
    "workload": REPO / "examples" / "workloads" / "4_catdog.yaml",
    "scenario": REPO / "simulator" / "data" / "scenarios" / "mmc.yaml",
    "pool": REPO / "simulator" / "data" / "pools" / "chtc.yaml",
    "profile": REPO / "profiles" / "cnn_catdog.json",
    "submit": REPO / "examples" / "submit" / "good.sub",
    "log": REPO / "tests" / "fixtures" / "logs" / "chtc_gpu_modern_iso.log",
}
TRACE = ("submit_s,start_s,end_s,gpus,gpu_type\n0,10,3600,1,A100\n5,20,7200,2,\n"
         "30,,,1,V100\n40,50,,0.5,T4\n60,70,900,4,A100\n")

# The command that reads each format (cheap: loading and validating, not long simulations).
# A scenario or trace that happens to be valid stops at the unknown --vary key (exit 2).
COMMANDS: dict[str, Callable[[str], list[str]]] = {
    "workload": lambda p: ["assess", p, "--json"],
    "scenario": lambda p: ["whatif", p, "--vary", "fuzz.no_such_key=1", "--workers", "0", "--json"],
    "pool": lambda p: ["pools", p, "--json"],
    "profile": lambda p: ["fit", p, "--json"],
    "submit": lambda p: ["check", p, "--json"],
    "log": lambda p: ["logs", p, "--json"],
    "trace": lambda p: ["whatif", "mmc", "--background-trace", p, "--vary",
                        "fuzz.no_such_key=1", "--workers", "0", "--json"],
}
SUFFIX = {"workload": ".yaml", "scenario": ".yaml", "pool": ".yaml", "profile": ".json",
          "submit": ".sub", "log": ".log", "trace": ".csv"}
PYTHON_ERRORS = ("Traceback (most recent call last)", "Error:", "Exception:")

# -- hostile values and edits ------------------------------------------------------------------

NASTY_TEXT = st.sampled_from([
    "", " ", "\n", "\x00", "\x1b[31m", "ü", "🙂", "a\nb", "$(x)", "'", '"', "\\", "{", "[", "- -",
    "*x", "&a", "!!python/object:os.system", "1e308", "-1", "0", "nan", "NaN", ".inf", "-.inf",
    "1e-3", "0x10", "1_000", "true", "null", "~", "A" * 5000, "queue", "include : /bin/true |",
])
NASTY_SCALAR = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63), 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    NASTY_TEXT, st.text(max_size=30),
)
NASTY_VALUE = st.recursive(
    NASTY_SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, prefix + (i,))
    return out


def _set(doc: Any, path: tuple, value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


@st.composite
def structured(draw: Any, base: Any) -> Any:
    """The base document with one to three values replaced, dropped, or keys added."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "add" and isinstance(_get(doc, path), dict):
            _get(doc, path)[draw(st.sampled_from(["extra", "nots", "tasks ", "<<", "1"]))] = draw(NASTY_VALUE)
        elif action == "delete" and path:
            doc = _set(doc, path, None, True)
        else:
            doc = _set(doc, path, draw(NASTY_VALUE), False)
    return doc


def _get(doc: Any, path: tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


@st.composite
def garbled_lines(draw: Any, text: str) -> str:
    """The base text with lines deleted, duplicated, swapped, cut, or replaced by hostile text."""
    lines = text.split("\n")
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            lines = [""]
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["delete", "duplicate", "swap", "cut", "replace", "insert",
                                       "token"]))
        if action == "delete":
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, lines[i])
        elif action == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif action == "cut":
            lines[i] = lines[i][:draw(st.integers(0, max(0, len(lines[i]))))]
        elif action == "replace":
            lines[i] = draw(st.one_of(NASTY_TEXT, st.text(max_size=60)))
        elif action == "insert":
            lines.insert(i, draw(st.one_of(NASTY_TEXT, st.text(max_size=60))))
        else:  # replace one word (a number, a date, a key) by a hostile token
            words = lines[i].split(" ")
            k = draw(st.integers(0, len(words) - 1))
            words[k] = draw(NASTY_TEXT)
            lines[i] = " ".join(words)
    return "\n".join(lines)


def _dump(kind: str, doc: Any) -> str:
    if kind == "profile":
        return json.dumps(doc, allow_nan=True, default=str)
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def _base_doc(kind: str) -> Any:
    text = BASE[kind].read_text()
    return json.loads(text) if kind == "profile" else yaml.safe_load(text)


def inputs(kind: str) -> st.SearchStrategy[str | bytes]:
    if kind == "trace":
        text = TRACE
    else:
        text = BASE[kind].read_text()
    strategies: list[st.SearchStrategy[Any]] = [garbled_lines(text)]
    if kind in ("workload", "scenario", "pool", "profile"):
        doc = _base_doc(kind)
        strategies.append(structured(doc).map(lambda d, k=kind: _dump(k, d)))
    raw = st.binary(max_size=200).map(lambda b, t=text: t.encode()[: len(t) // 2] + b)
    strategies.append(raw)
    return st.one_of(*strategies)


# -- running one example -------------------------------------------------------------------------

def _snapshot(root: Path) -> set[str]:
    return {p.name for p in root.iterdir()}


def run_example(kind: str, content: str | bytes, workdir: Path) -> None:
    with tempfile.TemporaryDirectory(dir=workdir) as out_dir, \
            tempfile.TemporaryDirectory(dir=workdir) as private_tmp:
        out = Path(out_dir)
        path = out / f"input{SUFFIX[kind]}"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", errors="surrogatepass")
        before = _snapshot(workdir)      # this test's own directory: nobody else writes there
        stdout, stderr = io.StringIO(), io.StringIO()
        cwd, saved_tmp = os.getcwd(), tempfile.tempdir
        os.chdir(out)
        tempfile.tempdir = private_tmp
        try:
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                try:
                    code = main(COMMANDS[kind](str(path)))
                except SystemExit as exc:
                    code = int(exc.code or 0)
        finally:
            os.chdir(cwd)
            tempfile.tempdir = saved_tmp
        err = stderr.getvalue()
        assert code in (0, 1, 2), (code, err[-2000:])
        assert not any(e in err for e in PYTHON_ERRORS), err[-3000:]
        if stdout.getvalue().strip():
            json.loads(stdout.getvalue())          # one JSON document, also on errors
        assert _snapshot(workdir) == before, _snapshot(workdir) ^ before
        assert not list(Path(private_tmp).iterdir()), list(Path(private_tmp).iterdir())
        left = sorted(p.name for p in out.iterdir())
        assert left == [path.name], left


KINDS = list(COMMANDS)
FAST = settings(max_examples=100, deadline=timedelta(seconds=60), database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large, HealthCheck.filter_too_much])
SLOW = settings(FAST, max_examples=1000)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.mark.parametrize("kind", KINDS)
def test_fuzz(kind: str, workdir: Path) -> None:
    @FAST
    @given(content=inputs(kind))
    def check(content: str | bytes) -> None:
        run_example(kind, content, workdir)

    check()


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_fuzz_thousand(kind: str, workdir: Path) -> None:
    @SLOW
    @given(content=inputs(kind))
    def check(content: str | bytes) -> None:
        run_example(kind, content, workdir)

    check()


def test_the_unmutated_inputs_are_accepted(workdir: Path) -> None:
    """The base files are valid: every exit-2 in the fuzz comes from a mutation."""
    for kind in ("workload", "pool", "profile", "submit", "log"):
        text = BASE[kind].read_text()
        stdout, stderr = io.StringIO(), io.StringIO()
        path = workdir / f"base{SUFFIX[kind]}"
        path.write_text(text)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(COMMANDS[kind](str(path)))
        assert code in (0, 1), (kind, stderr.getvalue()[-1000:])
        assert not math.isnan(0.0) and json.loads(stdout.getvalue())
