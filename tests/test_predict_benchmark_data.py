"""The published throughputs behind benchmarks/predictor_accuracy.py: well-formed, sourced."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.catalog import load_catalog
from simulator.shipped import shipped_path

REPO = Path(__file__).resolve().parents[1]
DATA = shipped_path("benchmark", "gpu_throughput")
COLUMNS = ["model", "gpu", "precision", "batch_size", "throughput", "unit", "source"]


def rows() -> list[dict[str, str]]:
    with DATA.open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == COLUMNS
        return list(reader)


def test_every_row_is_sourced_and_valid() -> None:
    catalog = load_catalog()
    seen = set()
    for r in rows():
        assert r["gpu"] in catalog, r["gpu"]
        assert float(r["throughput"]) > 0
        assert r["batch_size"] == "" or int(r["batch_size"]) > 0
        assert r["unit"] in ("images/s", "sequences/s")
        assert r["source"].split(":", 1)[1].strip().startswith("https://github.com/")
        key = (r["source"].split(":", 1)[0], r["model"], r["gpu"], r["precision"])
        assert key not in seen, key
        seen.add(key)


def test_several_generations_are_covered() -> None:
    catalog = load_catalog()
    caps = {catalog.get(r["gpu"]).capability for r in rows()}
    assert {6.1, 7.0, 7.5, 8.0, 8.6, 8.9, 9.0} <= caps


@pytest.mark.slow
def test_accuracy_benchmark_runs_and_recognises_input_bound() -> None:
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "predictor_accuracy.py")],
                         capture_output=True, text=True, check=True, timeout=600).stdout
    assert "ALL" in out and "median" in out
    tail = out.split("Input-bound variant", 1)[1]
    assert "bound input" in tail
