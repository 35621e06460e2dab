"""Shared fixtures. The suite runs offline: nothing may reach the Hugging Face Hub."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ENV = "PATCHNET_ZOO_DATA"


def _data_root() -> Path:
    env = os.environ.get(DATA_ENV)
    return Path(env) if env else (REPO_ROOT / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real data: ``$PATCHNET_ZOO_DATA``, else ``../shared/data`` next to the repository."""
    root = _data_root()
    if not (root / "splits").is_dir():
        pytest.skip(f"real data not found at {root} (set ${DATA_ENV} to the data root)")
    return root
