"""The notebooks run top to bottom on small settings (ADVISOR_NOTEBOOK_FAST=1), draw their plots,
and are committed without outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["capacity_planning.ipynb", "consultation.ipynb"]
TIMEOUT_S = 240   # per cell; the whole fast run of both notebooks takes well under a minute


def execute(name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("ADVISOR_NOTEBOOK_FAST", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)   # CI sets Agg; the kernel draws inline
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    return nb


def outputs(nb: Any) -> list[dict[str, Any]]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def text_of(nb: Any) -> str:
    parts = []
    for o in outputs(nb):
        if o.get("output_type") == "stream":
            parts.append(o.get("text", ""))
        elif "data" in o:
            parts.append(o["data"].get("text/plain", "") + o["data"].get("text/html", ""))
    return "\n".join(parts)


def images(nb: Any) -> int:
    return sum(1 for o in outputs(nb) if "image/png" in o.get("data", {}))


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_committed_without_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)


def test_capacity_planning_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    nb = execute("capacity_planning.ipynb", monkeypatch)
    text = text_of(nb)
    for variant in ("+16 H100", "long limit 4 → 8", "double demand"):
        assert variant in text
    assert "time to results (h)" in text           # the comparison table
    assert "H100-SXM5-80GB].count: 8 → 24" in text   # the change the variant made
    assert images(nb) == 2
    assert not any(o.get("output_type") == "error" for o in outputs(nb))


def test_consultation_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    nb = execute("consultation.ipynb", monkeypatch)
    text = text_of(nb)
    assert "htc-able" in text
    assert "request_gpus = 1" in text and "queue" in text   # the submit file text
    assert "+is_resumable" in text
    assert images(nb) == 1   # candidates and the checkpoint curve, side by side
    assert not any(o.get("output_type") == "error" for o in outputs(nb))

