"""Generated multi-scenario, multi-task data with a known shared structure (for tests).

Every row is a user in one flow (scenario, e.g. add-a-line / upgrade / new customer) with
observed labels for some use cases (e.g. CTR, ATC, CVR). A latent user vector drives the
features and every task's logit, so tasks are related through it; each flow adds its own
direction, and use cases share most of their weights. Rarer use cases are observed on
fewer rows (their mask is 0 elsewhere), like conversion labels in production logs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfzoo.data.features import CategoricalFeature, DatasetSpec, EmbeddingFeature, NumericFeature
from tfzoo.data.tabular import TabularData

DEFAULT_FLOWS = ("aal", "eup", "nse")
DEFAULT_USE_CASES = ("ctr", "atc", "cvr")
# Share of rows on which each default use case is observed, and its positive rate there.
DEFAULT_OBSERVED = (1.0, 0.5, 0.1)
DEFAULT_POSITIVE_RATES = (0.3, 0.15, 0.05)


def make_multi_scenario_data(
    num_rows: int = 20_000,
    *,
    flows: Sequence[str] = DEFAULT_FLOWS,
    use_cases: Sequence[str] = DEFAULT_USE_CASES,
    observed: Sequence[float] = DEFAULT_OBSERVED,
    positive_rates: Sequence[float] = DEFAULT_POSITIVE_RATES,
    latent_dim: int = 8,
    num_categorical: int = 4,
    vocabulary_size: int = 20,
    num_numeric: int = 4,
    embedding_dim: int = 16,
    missing_rate: float = 0.05,
    seed: int = 0,
) -> TabularData:
    """Generates `num_rows` rows.

    Features: `cat_0..` (categorical strings), `num_0..` (numeric, `missing_rate` of them
    NaN), `item_vector` (a precomputed-embedding-like vector) and `flow`. Labels: one per
    use case, observed (mask 1) on a share `observed[i]` of rows with a positive rate
    near `positive_rates[i]`.
    """
    if not (len(use_cases) == len(observed) == len(positive_rates)):
        raise ValueError(
            "`use_cases`, `observed` and `positive_rates` must have one entry per use case. Received: "
            f"{len(use_cases)}, {len(observed)}, {len(positive_rates)}"
        )
    if num_rows < 1:
        raise ValueError(f"`num_rows` must be >= 1. Received: num_rows={num_rows}")
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(num_rows, latent_dim))  # [n, k]

    features: dict[str, np.ndarray] = {}
    spec_features = []
    for j in range(num_categorical):
        scores = latent @ rng.normal(size=(latent_dim, vocabulary_size)) + rng.gumbel(size=(num_rows, vocabulary_size))
        features[f"cat_{j}"] = np.array([f"c{j}_{v}" for v in scores.argmax(axis=1)], dtype=object)
        spec_features.append(CategoricalFeature(f"cat_{j}"))
    for j in range(num_numeric):
        values = latent @ rng.normal(size=latent_dim) * 0.5 + rng.normal(size=num_rows) + 3.0 * j
        values[rng.random(num_rows) < missing_rate] = np.nan
        features[f"num_{j}"] = values.astype(np.float32)
        spec_features.append(NumericFeature(f"num_{j}"))
    item_vector = latent @ rng.normal(size=(latent_dim, embedding_dim)) / np.sqrt(latent_dim)
    features["item_vector"] = (item_vector + 0.5 * rng.normal(size=item_vector.shape)).astype(np.float32)
    spec_features.append(EmbeddingFeature("item_vector", embedding_dim))

    flow_scores = latent[:, :1] * np.linspace(-1.0, 1.0, len(flows)) + rng.gumbel(size=(num_rows, len(flows)))
    flow_index = flow_scores.argmax(axis=1)
    features["flow"] = np.asarray(flows, dtype=object)[flow_index]
    spec_features.append(CategoricalFeature("flow", vocabulary=tuple(flows)))

    shared_weights = rng.normal(size=latent_dim)
    flow_directions = rng.normal(size=(len(flows), latent_dim)) * 0.7
    labels, masks = {}, {}
    for use_case, share, rate in zip(use_cases, observed, positive_rates):
        weights = shared_weights + 0.5 * rng.normal(size=latent_dim)
        logits = latent @ weights + np.einsum("nk,nk->n", latent, flow_directions[flow_index])
        logits = logits / np.std(logits) * 1.5
        probabilities = 1.0 / (1.0 + np.exp(-(logits + _bias_for_rate(logits, rate))))
        labels[use_case] = (rng.random(num_rows) < probabilities).astype(np.float32)
        masks[use_case] = (rng.random(num_rows) < share).astype(np.float32)

    spec = DatasetSpec(features=tuple(spec_features), labels=tuple(use_cases))
    return TabularData(features=features, labels=labels, label_masks=masks, spec=spec, source="synthetic")


def _bias_for_rate(logits: np.ndarray, rate: float) -> float:
    """The bias b with mean(sigmoid(logits + b)) = rate, by bisection."""
    low, high = -30.0, 30.0
    for _ in range(60):
        middle = (low + high) / 2.0
        if np.mean(1.0 / (1.0 + np.exp(-(logits + middle)))) < rate:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0
