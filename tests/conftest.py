from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def shared_data() -> Path:
    """The real logs and traces in ../shared/data, read in place; skip where absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present (as on a user's machine)")
    return SHARED_DATA
