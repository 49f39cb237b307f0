"""Every figure README.md states is computed here, or is the bound of the test the README names,
and compared with the README's own text (read from README.md, not copied): a change to the code
that moves a figure, or a README edit that overstates one, fails here.

A figure the README rounds ("15%", "15.2%") is an upper bound at that rounding: the computed
value, rounded the same way, must not exceed it. Counts must be equal. The console examples of
deterministic commands are rerun and every line and table row the README shows (except lines it
elides with "...") must appear in the real output. Machine-dependent speeds (profiling overhead,
simulator and log-parser rates) are printed by the benchmarks the README's table names.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import itertools
import json
import re
import shlex
import statistics
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import test_theory

from advisor.cli import main
from advisor.predict import gates
from advisor.recommend import sizing
from simulator import catalog as catalog_module
from simulator import theory
from simulator.catalog import load_catalog
from simulator.shipped import shipped_path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
FLAT = " ".join(README.split())  # the README with every run of whitespace made one space


def stated(pattern: str) -> tuple[str, ...]:
    """The groups of `pattern` in the whitespace-flattened README; fail naming it if absent."""
    m = re.search(pattern, FLAT)
    assert m, f"README.md no longer states a figure matching {pattern!r}: update this test"
    return m.groups()


def within(computed_percent: float, figure: str, what: str) -> None:
    """`figure` ("15", "15.2") is an upper bound at its own rounding."""
    decimals = len(figure.split(".")[1]) if "." in figure else 0
    assert round(computed_percent, decimals) <= float(figure), (
        f"{what}: README.md says {figure}%, the code gives {computed_percent:.2f}%")


# --- the predictor against published throughputs (benchmarks/predictor_accuracy.py) -----------

@pytest.fixture(scope="module")
def predictor_accuracy() -> dict[str, tuple[int, float]]:
    """Run the benchmark the README names, in this process; {group: (pairs, median %)}."""
    spec = importlib.util.spec_from_file_location(
        "predictor_accuracy", REPO / "benchmarks" / "predictor_accuracy.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert bench.main([]) == 0
    found = {}
    for label in ("ALL", "ResNet-50", "BERT-base"):
        m = re.search(rf"^\s+{label}\b.*?(\d+) pairs: median\s+([\d.]+)%", out.getvalue(), re.M)
        assert m, f"benchmarks/predictor_accuracy.py printed no {label} summary line"
        found[label] = (int(m.group(1)), float(m.group(2)))
    return found


def test_predictor_pair_error_is_the_readmes(predictor_accuracy) -> None:
    got = predictor_accuracy
    # the `advisor fit` section and the benchmark table both state it
    for pattern in (r"speed ratios ([\d.]+)% over (\d+) pairs \(BERT-base ([\d.]+)%, ResNet-50 ([\d.]+)%\)",
                    r"predictor_accuracy\.py` \|[^|]*\| ([\d.]+)% over (\d+) pairs "
                    r"\(BERT-base ([\d.]+)%, ResNet-50 ([\d.]+)%\)"):
        overall, pairs, bert, resnet = stated(pattern)
        assert got["ALL"][0] == int(pairs)
        within(got["ALL"][1], overall, "median pair error, all pairs")
        within(got["BERT-base"][1], bert, "median pair error, BERT-base")
        within(got["ResNet-50"][1], resnet, "median pair error, ResNet-50")


# --- the speed model without a profile (Catalog.training_speed) ------------------------------

def test_training_speed_model_and_its_pair_error_are_the_readmes() -> None:
    compute, efficiency, bandwidth, error, pairs = stated(
        r"(\d+)% of a reference step scales with compute \(tensor cores at (\d+)% of their datasheet "
        r"peak\), (\d+)% with memory bandwidth — fitted to the shipped published throughputs "
        r"\(([\d.]+)% median error over (\d+) GPU pairs\)")
    assert catalog_module.TYPICAL_COMPUTE_SHARE == pytest.approx(int(compute) / 100)
    assert catalog_module.TENSOR_CORE_EFFICIENCY == pytest.approx(int(efficiency) / 100)
    assert 1 - catalog_module.TYPICAL_COMPUTE_SHARE == pytest.approx(int(bandwidth) / 100)
    cat = load_catalog()
    data = pd.read_csv(shipped_path("benchmark", "gpu_throughput"))
    data["origin"] = data["source"].str.split(":").str[0]
    precision = {"fp32_ngc_tf32": "tf32", "fp32": "tf32", "tf32": "tf32", "amp_fp16": "fp16"}
    errors = []
    for (_, prec, _), group in data.groupby(["model", "precision", "origin"]):
        for a, b in itertools.combinations(list(group.itertuples()), 2):
            predicted = (cat.training_speed(a.gpu, precision[prec])
                         / cat.training_speed(b.gpu, precision[prec]))
            errors.append(abs(predicted / (a.throughput / b.throughput) - 1))
    assert len(errors) == int(pairs)
    within(100 * statistics.median(errors), error, "training_speed median pair error")


# --- theory: the bounds of tests/test_theory.py are the README's ------------------------------

def _cases(params: list[Any]) -> list[tuple[Any, ...]]:
    return [tuple(p.values) if hasattr(p, "values") else tuple(p) for p in params]


def test_theory_checks_use_the_readmes_bounds() -> None:
    cs, rho_lo, rho_hi, mmc_rel = stated(
        r"M/M/c waits against Erlang C for c = ([\d, ]+) at ρ = ([\d.]+)–([\d.]+) "
        r"\(within (\d+)% and the CI in the slow run\)")
    precise = _cases(test_theory.MMC_PRECISE)
    assert {c for c, *_ in precise} == {int(c) for c in cs.split(",")}
    rhos = [rho for _, rho, *_ in precise]
    assert (min(rhos), max(rhos)) == (float(rho_lo), float(rho_hi))
    assert test_theory.MMC_PRECISE_REL == pytest.approx(int(mmc_rel) / 100)

    cases, wall_rel = stated(r"Daly's expected wall time for \(M, δ\) = ((?:\(\d+ h, \d+ s\),? ?(?:and )?)+)"
                             r"within ([\d.]+)%")
    readme_cases = {(float(m), float(d)) for m, d in re.findall(r"\((\d+) h, (\d+) s\)", cases)}
    assert {(m, d) for m, d, _ in _cases(test_theory.DALY_CASES)} == readme_cases
    assert test_theory.DALY_WALL_REL == pytest.approx(float(wall_rel) / 100)
    (tau_rel,) = stated(r"the simulated optimal interval within ([\d.]+)% of Daly's τ_opt")
    assert test_theory.DALY_TAU_REL == pytest.approx(float(tau_rel) / 100)


def test_daly_optimum_of_the_recommend_example() -> None:
    mtbf_h, cost_s, minutes = stated(r"Daly's optimum for a mean time to eviction of (\d+) h and a "
                                     r"(\d+) s checkpoint is (\d+) min")
    assert round(theory.daly_interval(int(cost_s) / 3600, int(mtbf_h)) * 60) == int(minutes)


def test_gates_headroom_and_exit_code_are_the_readmes() -> None:
    bf16_tf32, fp8 = stated(r"bf16/TF32 need ([\d.]+), FP8 ([\d.]+)")
    assert gates.BF16_MIN == gates.TF32_MIN == float(bf16_tf32) and gates.FP8_MIN == float(fp8)
    (headroom,) = stated(r"host peak \+ (\d+)%")
    assert sizing.HOST_HEADROOM == pytest.approx(int(headroom) / 100)
    (code,) = stated(r"`checkpoint_exit_code = (\d+)`")
    from advisor.emit.common import CHECKPOINT_EXIT_CODE
    assert CHECKPOINT_EXIT_CODE == int(code)


# --- the console examples, rerun ---------------------------------------------------------------

# Commands whose output depends on the machine (a measured profile and what is predicted from it)
# are illustrations, and so are the examples run on a file of the reader's own.
MEASURED = {"profile", "fit"}
ILLUSTRATIVE_INPUTS = {"/tmp/my_pool.yaml", "my_pool.yaml"}
SHARED_DATA = {"logs"}                  # run on the real logs of the shared data folder


def examples() -> list[tuple[str, list[str]]]:
    """Every `$ advisor ...` example of the README: (command, the output lines it shows, up to the
    next `$ ` or the end of the block). A command continued with `\\` is joined."""
    lines = README.splitlines()
    found = []
    for i, line in enumerate(lines):
        if not line.startswith("$ advisor "):
            continue
        j, command = i, line[2:]
        while command.rstrip().endswith("\\"):
            j += 1
            command = command.rstrip()[:-1] + " " + lines[j].strip()
        shown = []
        for follow in lines[j + 1:]:
            if follow.startswith(("$ ", "```")):
                break
            shown.append(follow)
        found.append((" ".join(command.split("#")[0].split()), shown))
    return found


def example_params() -> list[Any]:
    params = []
    for command, shown in examples():
        argv = shlex.split(command)[1:]
        if argv[0] in MEASURED | SHARED_DATA or ILLUSTRATIVE_INPUTS & set(argv) or "|" in argv:
            continue
        # every example runs by default (recommend and whatif simulate for ~10 s each): a figure
        # the README shows is checked in every CI run
        params.append(pytest.param(command, shown, id=command[:60]))
    return params


BOX = set("┏┓┗┛┡┩└┘┌┐├┤┼┬┴┳┻╇╋━─═╭╮╰╯ ")


def flat(text: str) -> str:
    """Text with box-drawing characters dropped and whitespace runs made one space."""
    return " ".join("".join(" " if ch in BOX else ch for ch in text).split())


def cells(line: str) -> tuple[str, ...] | None:
    """The cells of a table row (the last one may be open: the README cuts long rows)."""
    if "│" not in line and "┃" not in line:
        return None
    pieces = re.split("[│┃]", line)[1:]
    if pieces and not pieces[-1].strip():
        pieces = pieces[:-1]
    return tuple(" ".join(c.split()) for c in pieces)


def assert_shown_output_is_real(shown: list[str], real: str) -> None:
    """Each line the README shows is in the real output: table rows cell by cell, other lines as
    text (whitespace and wrapping aside). In a row cut with "...", the cells before the cut are
    compared and the cut cell must start the same way as the real one; other lines with "..."
    are elisions and skipped."""
    real_rows = [r for r in (cells(line) for line in real.splitlines()) if r]
    real_flat = flat(real)
    for line in shown:
        if not line.strip() or set(line) <= BOX:
            continue
        row = cells(line)
        if row is None:
            if "..." not in line:
                text = flat(line)
                assert text in real_flat, f"README line {text!r} is not in the real output:\n{real}"
            continue
        cut = next((k for k, c in enumerate(row) if "..." in c), None)
        if cut is None:
            assert row in real_rows, f"README row {row} is not in the real output:\n{real}"
            continue
        head = row[cut].split("...")[0].strip()
        assert any(r[:cut] == row[:cut] and len(r) > cut and (r[cut].startswith(head) or
                                                            head.startswith(r[cut]))
                   for r in real_rows), f"README row {row} is not in the real output:\n{real}"


def run_cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_readme_has_examples_of_the_deterministic_commands() -> None:
    run = {shlex.split(p.values[0])[1] for p in example_params()}
    assert {"assess", "check", "gpus", "pools", "simulate", "recommend", "whatif"} <= run


@pytest.mark.parametrize(("command", "shown"), example_params())
def test_console_example_is_the_real_output(command: str, shown: list[str], capsys, monkeypatch,
                                            tmp_path: Path) -> None:
    """Run from an empty folder (files the example writes land there), with the repository's
    files named by their path in the repository, as the README runs them from its root."""
    monkeypatch.chdir(tmp_path)
    argv = [str(REPO / a) if (REPO / a).exists() else a for a in shlex.split(command)[1:]]
    if argv[0] in ("simulate", "whatif"):   # recommend runs its candidates in this process
        argv += ["--workers", "0"]  # the same results in this process (test_simulator_replicate)
    _, out, err = run_cli(capsys, argv)
    assert_shown_output_is_real(shown, (out + err).replace(str(REPO) + "/", ""))


def test_the_ospool_verdict_of_the_cosmos_example(capsys) -> None:
    (verdict,) = stated(r"1_cosmos_pdfs\.yaml --pool ospool --json \| jq \.verdict \"([a-z-]+)\"")
    main(["assess", str(REPO / "examples/workloads/1_cosmos_pdfs.yaml"), "--pool", "ospool",
          "--json"])
    assert json.loads(capsys.readouterr().out)["verdict"] == verdict


def test_logs_example_is_the_real_output(shared_data: Path, capsys, monkeypatch) -> None:
    (command, shown), = [(c, s) for c, s in examples() if c.startswith("advisor logs ")]
    monkeypatch.chdir(shared_data / "htcondor-logs")
    _, out, err = run_cli(capsys, shlex.split(command)[1:])
    assert_shown_output_is_real(shown, out + err)
