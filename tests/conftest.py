import os
from pathlib import Path

# Tests run offline: the packaged MiniLM and models built in the tests need no network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
from helpers.data import offset_data  # noqa: E402


@pytest.fixture(scope="session")
def xy():
    return offset_data()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data sets (``FTLENS_DATA_DIR``; .ci/run points it at ../shared/data)."""
    value = os.environ.get("FTLENS_DATA_DIR")
    if not value:
        raise RuntimeError("set FTLENS_DATA_DIR to the data folder (e.g. ../shared/data)")
    path = Path(value)
    if not path.is_dir():
        raise RuntimeError(f"FTLENS_DATA_DIR={value} is not a folder")
    return path


@pytest.fixture(scope="session")
def minilm():
    import ftlens

    return ftlens.load_model("minilm", device="cpu")
