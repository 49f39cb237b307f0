from __future__ import annotations

import os
from pathlib import Path

import pytest

# Profiles shared by tests/test_profiler_*.py, taken once per session.
pytest_plugins = ("profiler_fixtures",)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA_ENV = "ADVISOR_SHARED_DATA"


def shared_data_candidates() -> list[Path]:
    """Where the real logs and traces are looked for, in order: $ADVISOR_SHARED_DATA, then a
    `shared/data` beside the repository root or beside any folder above it (a checkout at
    /work/main finds /work/shared/data, one at ~/src/clones/main finds ~/src/shared/data)."""
    env = os.environ.get(SHARED_DATA_ENV)
    if env:
        return [Path(env).expanduser()]
    return [folder / "shared" / "data" for folder in REPO.parents]


def find_shared_data() -> Path | None:
    return next((p for p in shared_data_candidates() if p.is_dir()), None)


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def shared_data() -> Path:
    """The real logs and traces, read in place; skip, naming every path looked at, where absent."""
    found = find_shared_data()
    if found is None:
        looked = ", ".join(str(p) for p in shared_data_candidates())
        pytest.skip(f"no shared data folder (looked for {looked}; set {SHARED_DATA_ENV} "
                    "to the folder that holds htcondor-logs/ and traces/)")
    return found
