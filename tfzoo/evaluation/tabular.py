"""The strong simple baselines of a ranker over tabular rows: logistic regression and
gradient-boosted trees, one per task, fitted on the run's training rows and scored with
the model's protocol (`tfzoo.evaluation.task_metrics` on the same split).

Both read the rows as the model does, after the run's preprocessing (the spec fitted on
the training split): each feature kind says which columns it gives them
(`Feature.baseline_columns`): one-hot indices, bags of indices, standardised numbers and
vectors for the linear model; indices (native categories where there are at most 255),
numbers, lengths and vectors for the trees.

- `logistic_regression`: `tfzoo.evaluation.logistic` (L2, C chosen on validation AUC);
- `gradient_boosted_trees`: scikit-learn's `HistGradientBoostingClassifier` (at most
  `TREE_ROUNDS` rounds, learning rate 0.1, stopped when the loss on a held-out 10% of the
  training rows has not improved for 10 rounds).

Both fit and predict on one thread (OpenMP and BLAS pools limited with `threadpoolctl`):
beside TensorFlow's threads or other processes, the pools' spinning workers made the same
fits 15-100x slower on a loaded 2-core machine (600 s instead of 4 s of CPU for 16,000
rows).

Rows without a task's label (mask 0) are left out of that task's fit. At most
`MAX_BASELINE_ROWS` training rows are used (a seeded sample): the baselines say what a
simple model reaches, they are not a second training job on very large data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sparse
from threadpoolctl import threadpool_limits

from tfzoo.data.features import DatasetSpec
from tfzoo.evaluation.logistic import task_logistic_regressions

BASELINES = ("logistic_regression", "gradient_boosted_trees")
TREE_ROUNDS = 300
MAX_BASELINE_ROWS = 500_000


def baseline_matrices(
    spec: DatasetSpec, inputs: Mapping[str, np.ndarray]
) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    """(linear [rows, width] CSR, trees [rows, tree_width], categorical [tree_width] bool)
    of preprocessed model `inputs` (`tfzoo.data.model_columns(...)["features"]`), features
    in the spec's order."""
    columns = [spec.feature(name).baseline_columns(np.asarray(inputs[name])) for name in spec.feature_names]
    linear = sparse.hstack([c.linear for c in columns], format="csr")
    trees = np.concatenate([c.trees for c in columns], axis=1)
    categorical = np.concatenate([c.categorical for c in columns])
    return linear, trees, categorical


class TabularBaselines:
    """Logistic regression and gradient-boosted trees per task, fitted once.

    Args:
      spec: the run's fitted `DatasetSpec`.
      train, validation: `tfzoo.data.model_columns` of the training and validation rows
        (features, labels, label_masks); validation chooses the logistic regression's C.
      tasks: the tasks to fit.
      seed: seeds the row sample (above `MAX_BASELINE_ROWS`) and the trees.
      baselines: which of `BASELINES` to fit.
    """

    def __init__(
        self,
        spec: DatasetSpec,
        train: Mapping,
        validation: Mapping,
        tasks: Sequence[str],
        *,
        seed: int = 0,
        baselines: Sequence[str] = BASELINES,
    ):
        unknown = sorted(set(baselines) - set(BASELINES))
        if unknown:
            raise ValueError(f"`baselines` must be among {BASELINES}. Received: baselines={list(baselines)}")
        self.spec, self.tasks, self.seed, self.baselines = spec, tuple(tasks), int(seed), tuple(baselines)
        with threadpool_limits(limits=1):
            self._fit(train, validation)

    def _fit(self, train: Mapping, validation: Mapping) -> None:
        spec = self.spec
        rows = len(next(iter(train["labels"].values())))
        kept = np.arange(rows)
        if rows > MAX_BASELINE_ROWS:
            kept = np.sort(np.random.default_rng(self.seed).choice(rows, MAX_BASELINE_ROWS, replace=False))
        linear, trees, self.categorical = baseline_matrices(spec, train["features"])
        linear, trees = linear[kept], trees[kept]
        labels = {t: np.asarray(train["labels"][t])[kept] for t in self.tasks}
        masks = {t: np.asarray(train["label_masks"][t])[kept] for t in self.tasks}
        self.models: dict[str, dict] = {}
        if "logistic_regression" in self.baselines:
            validation_linear, _, _ = baseline_matrices(spec, validation["features"])
            self.models["logistic_regression"] = task_logistic_regressions(
                linear,
                labels,
                masks,
                validation_linear,
                validation["labels"],
                validation["label_masks"],
                self.tasks,
            )
        if "gradient_boosted_trees" in self.baselines:
            self.models["gradient_boosted_trees"] = {t: self._fit_trees(trees, labels[t], masks[t]) for t in self.tasks}

    def _fit_trees(self, trees: np.ndarray, labels: np.ndarray, masks: np.ndarray):
        from sklearn.ensemble import HistGradientBoostingClassifier

        observed = masks.astype(bool)
        model = HistGradientBoostingClassifier(
            max_iter=TREE_ROUNDS,
            learning_rate=0.1,
            categorical_features=self.categorical if self.categorical.any() else None,
            early_stopping=True,
            validation_fraction=0.1,
            n_iter_no_change=10,
            random_state=self.seed,
        )
        # Early stopping holds out a stratified tenth: each class needs two rows at least.
        counts = np.bincount(labels[observed].astype(np.int64), minlength=2)
        if trees.shape[1] == 0 or counts.min() < 2:
            return _Constant(float(labels[observed].mean()) if observed.any() else 0.5)
        return model.fit(trees[observed], labels[observed])

    def predictions(self, inputs: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
        """{baseline: {task: score [rows]}} on preprocessed `inputs` (logits for the linear
        model, probabilities for the trees: both rank as the model's probabilities do)."""
        with threadpool_limits(limits=1):
            return self._predictions(inputs)

    def _predictions(self, inputs: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
        linear, trees, _ = baseline_matrices(self.spec, inputs)
        result = {}
        for name, models in self.models.items():
            if name == "logistic_regression":
                result[name] = {t: models[t].decision_function(linear) for t in self.tasks}
            else:
                result[name] = {t: models[t].predict_proba(trees)[:, 1] for t in self.tasks}
        return result


class _Constant:
    """A task the trees cannot fit (a class with fewer than two rows, or no tree columns):
    its base rate."""

    def __init__(self, rate: float):
        self.rate = rate

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.tile([1.0 - self.rate, self.rate], (len(x), 1))
