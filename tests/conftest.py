"""Test set-up: Keras 2 before anything touches tf.keras, quiet TensorFlow, shared fixtures."""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# `make test` runs two pytest workers on two cores: BLAS and OpenMP pools (scikit-learn's
# baselines, NumPy) of one thread each, here and in the processes tests start, or their
# spinning threads fight the other worker's for the cores and fits run many times slower.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import tfzoo  # noqa: E402,F401

threadpool_limits(limits=1)  # the pools already loaded (NumPy's BLAS) too

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


@pytest.fixture(scope="session")
def small_friend_graph():
    """A generated friend graph of 300 users with 60 multi-hot features, split per user."""
    graph = tfzoo.data.make_friend_graph(300, num_communities=6, feature_dim=60, mean_degree=8, seed=0)
    return tfzoo.data.split_friendships(graph, seed=0)


@pytest.fixture(scope="session")
def small_sampler(small_friend_graph):
    """Samples 2-hop subgraphs (fan-out 4, 3) from the training graph of `small_friend_graph`."""
    from tfzoo.graph import SubgraphSampler

    return SubgraphSampler(small_friend_graph.train, fanouts=(4, 3), seed=0)


@pytest.fixture(scope="session")
def friendship_batches(small_friend_graph, small_sampler):
    """Four batches of 32 training friendships with their subgraphs, sampled eagerly (no
    tf.data trace: the traced sampler graph is large and slow to optimise)."""
    import tensorflow as tf

    from tfzoo.graph import directed_pairs, remove_edges_between

    pairs = directed_pairs(small_friend_graph.train.edges)
    order = np.random.default_rng(0).permutation(len(pairs))[:128]
    batches = []
    for chunk in np.split(pairs[order], 4):
        query, candidate = tf.constant(chunk[:, 0]), tf.constant(chunk[:, 1])
        batches.append(
            {
                "query": remove_edges_between(small_sampler(query), query, candidate),
                "candidate": remove_edges_between(small_sampler(candidate), query, candidate),
            }
        )
    return batches


# The files that train clusters or real-size models, longest first. `make test` runs the
# suite on two workers a file at a time: started first, they run beside the many short
# files instead of being left for one worker at the end.
LONGEST_FILES = (
    "tests/training/test_distributed_subgraphs.py",
    "tests/training/test_distributed.py",
    "tests/training/test_friend_retrieval.py",
    "tests/serving/test_end_to_end.py",
    "tests/serving/test_errors.py",
)


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        path = item.nodeid.split("::")[0]
        return LONGEST_FILES.index(path) if path in LONGEST_FILES else len(LONGEST_FILES)

    items.sort(key=rank)  # stable: every file keeps its own order
