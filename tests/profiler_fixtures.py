"""Profiles shared by the profiler tests (tests/test_profiler_*.py), each taken once per test
session: profiling starts a child interpreter that imports torch, which costs far more than the
steps it measures, so a script profiled by several test files is profiled here, once.

Loaded from tests/conftest.py (``pytest_plugins``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from advisor.profiler import profile_script

SCRIPTS = Path(__file__).resolve().parent / "fixtures" / "scripts"
MEMORY_MODELS = SCRIPTS / "memory_models.py"
MEMORY_MODEL_NAMES = ("mlp", "cnn", "transformer")
# memory_models.py --model NAME: 3 warm-up steps (the counted step is the third, steady state),
# 3 measured steps (enough for a median step time to compare a busy profile with).
MEMORY_WARMUP, MEMORY_STEPS = 3, 3


def load_module(path: Path) -> ModuleType:
    """The script at `path` imported as a module (its `__main__` block does not run): the tests
    rebuild its model to count FLOPs and bytes independently of the profiler."""
    spec = importlib.util.spec_from_file_location(f"script_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def profile_memory_model(name: str, cwd: Path, steps: int = MEMORY_STEPS,
                         warmup: int = MEMORY_WARMUP) -> dict:
    return profile_script(MEMORY_MODELS, ["--model", name, "--steps", "40"], steps=steps,
                          warmup=warmup, cwd=cwd)


@pytest.fixture(scope="session")
def memory_profiles(tmp_path_factory) -> dict[str, dict]:
    """memory_models.py profiled quietly, per model: memory (peaks) and contention (the quiet
    baseline of the MLP)."""
    cwd = tmp_path_factory.mktemp("memory-models")
    return {name: profile_memory_model(name, cwd) for name in MEMORY_MODEL_NAMES}
