"""Test set-up: Keras 2 before anything touches tf.keras, quiet TensorFlow, shared fixtures."""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import tfzoo  # noqa: E402,F401

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real datasets (CI has them beside the checkout); tests needing them skip elsewhere."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def census():
    """The bundled Census-Income file, read once per session."""
    return tfzoo.data.read_census_income()


@pytest.fixture(scope="session")
def census_small(census):
    """2,000 Census rows and a spec fitted on them: enough to train a few steps."""
    small = census.take(np.random.default_rng(0).choice(len(census), 2000, replace=False))
    return small, small.spec.fit(small.features)


@pytest.fixture(scope="session")
def synthetic_small():
    data = tfzoo.data.make_multi_scenario_data(1500, seed=1)
    return data, data.spec.fit(data.features)
