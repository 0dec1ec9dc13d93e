"""Shared fixtures. Keras is imported lazily: the serving tests run without it."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    config.addinivalue_line("markers", "serving: backend-independent tests of serve/ (run once, not per backend)")
    if os.environ.get("KERAS_BACKEND") == "torch":
        import torch

        torch.set_num_threads(1)


@pytest.fixture(scope="session")
def real_data_path() -> Path:
    """The real phone-price CSV from $KERASNN_DATA.

    Skips when it is not set or not a file, unless KERASNN_REQUIRE_DATA=1 (CI), where
    a missing file is a failure.
    """
    value = os.environ.get("KERASNN_DATA")
    path = Path(value) if value else None
    if path is None or not path.is_file():
        message = f"real data not available (KERASNN_DATA={value!r})"
        if os.environ.get("KERASNN_REQUIRE_DATA") == "1":
            pytest.fail(message + " but KERASNN_REQUIRE_DATA=1")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def backend() -> str:
    import keras

    return keras.backend.backend()
