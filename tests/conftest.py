"""Shared fixtures. Tests that need the real benchmark files skip cleanly when ../shared is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# property tests draw the same examples on every run: a failure is reproducible, never a flake
settings.register_profile("evalkit", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("evalkit")

# Nothing reaches the internet: a hub-only dataset fails at once instead of waiting on the network.
# Set before `datasets` and `huggingface_hub` are imported, which read these once.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The real benchmark files in ../shared/data; skips the test when they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """Tests never read or write the user's ~/.cache/evalkit (catalogs, generated images)."""
    import os

    previous = os.environ.get("EVALKIT_CACHE_DIR")
    os.environ["EVALKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("evalkit-cache"))
    yield
    if previous is None:
        os.environ.pop("EVALKIT_CACHE_DIR", None)
    else:
        os.environ["EVALKIT_CACHE_DIR"] = previous
