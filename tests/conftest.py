import os
from pathlib import Path

# Tests run offline: the packaged MiniLM and models built in the tests need no network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def offset_data(n=300, p=9, q=7, seed=0, offset=1e3):
    """Correlated X [n, p], Y [n, q] with several dimensions offset by `offset`, so that
    cosine similarities between rows crowd near 1 (as with BERT's outlier dimensions)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4))
    x = z @ rng.normal(size=(4, p)) + 0.7 * rng.normal(size=(n, p))
    y = z @ rng.normal(size=(4, q)) + 0.7 * rng.normal(size=(n, q))
    x[:, [0, 3, 5]] += offset * np.array([1.0, -0.6, 0.8])
    y[:, [1, 2]] += offset * np.array([0.9, 1.3])
    return x, y


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
