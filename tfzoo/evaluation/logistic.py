"""L2-regularised logistic regression over sparse features, with C chosen on validation:
the strong simple baseline beside the sequence models (and the probe of frozen
embeddings).

The objective is scikit-learn's (`LogisticRegression(penalty="l2", C=C)`):

    min_{w, b}  1/2 ||w||^2 + C sum_i s_i log(1 + exp(-y_i (x_i w + b)))   (y in {-1, 1})

with sample weights s_i (0 drops a row: an absent label) and an unpenalised intercept b,
solved with SciPy's L-BFGS-B on the objective divided by C sum_i s_i (same minimiser,
better scaled for the stopping tolerance).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.optimize
import scipy.sparse as sparse
from threadpoolctl import threadpool_limits

from tfzoo.evaluation.metrics import roc_auc

# The grid of C searched on validation (10^-3 .. 10^2).
DEFAULT_CS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)


def _matrix(x):
    return x.tocsr() if sparse.issparse(x) else np.asarray(x, np.float64)


@dataclasses.dataclass
class LogisticRegression:
    """Binary logistic regression with an L2 penalty of strength 1 / `c` (see the module).

    Attributes:
      c: inverse regularisation strength (larger: weaker penalty).
      max_iterations: L-BFGS-B iterations at most.
      tolerance: L-BFGS-B's projected-gradient tolerance on the scaled objective.
      coef: [features] weights after `fit`.
      intercept: the bias after `fit`.
    """

    c: float = 1.0
    max_iterations: int = 1000
    tolerance: float = 1e-8
    coef: np.ndarray | None = None
    intercept: float = 0.0

    def __post_init__(self):
        if not self.c > 0:
            raise ValueError(f"`c` must be > 0. Received: c={self.c}")

    def fit(self, x, y, sample_weight=None, *, warm_start: LogisticRegression | None = None) -> LogisticRegression:
        """Fits on [rows, features] `x` (dense or SciPy sparse) and 0/1 labels `y`; from
        the weights of `warm_start` (a fit at a nearby C on the same rows) if given: the
        objective is strictly convex, so only the number of iterations changes."""
        x = _matrix(x)
        y = np.asarray(y, np.float64).ravel()
        weights = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, np.float64).ravel()
        if x.shape[0] != len(y) or len(weights) != len(y):
            raise ValueError(
                f"`x`, `y` and `sample_weight` must have as many rows. Received: {x.shape[0]}, {len(y)}, {len(weights)}"
            )
        total = weights.sum()
        if not total > 0:
            raise ValueError("Logistic regression needs rows of positive weight. Received: sum(sample_weight)=0")
        signs = 2.0 * y - 1.0  # [rows] in {-1, 1}
        scale = 1.0 / total
        penalty = 1.0 / (self.c * total)

        def objective(theta):
            w, b = theta[:-1], theta[-1]
            margins = signs * (x @ w + b)  # [rows]
            loss = scale * weights @ np.logaddexp(0.0, -margins) + 0.5 * penalty * w @ w
            # d/dz log(1 + exp(-y z)) = -y sigmoid(-y z)
            residual = -scale * weights * signs * _sigmoid(-margins)  # [rows]
            gradient = np.empty_like(theta)
            gradient[:-1] = x.T @ residual + penalty * w
            gradient[-1] = residual.sum()
            return loss, gradient

        start = np.zeros(x.shape[1] + 1)
        if warm_start is not None and warm_start.coef is not None and len(warm_start.coef) == x.shape[1]:
            start = np.append(warm_start.coef, warm_start.intercept)
        result = scipy.optimize.minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": self.max_iterations, "gtol": self.tolerance},
        )
        self.coef, self.intercept = result.x[:-1], float(result.x[-1])
        return self

    def decision_function(self, x) -> np.ndarray:
        """Logits [rows] of fitted weights."""
        if self.coef is None:
            raise ValueError("The logistic regression is not fitted: call `fit` first.")
        return np.asarray(_matrix(x) @ self.coef + self.intercept).ravel()

    def predict_probability(self, x) -> np.ndarray:
        """P(y = 1) [rows]."""
        return _sigmoid(self.decision_function(x))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for large |z|


def tuned_logistic_regression(
    train_x,
    train_y,
    validation_x,
    validation_y,
    *,
    train_weight=None,
    validation_weight=None,
    cs: Sequence[float] = DEFAULT_CS,
) -> tuple[LogisticRegression, dict[float, float]]:
    """The logistic regression of the C in `cs` with the best validation AUC (ties: the
    smaller C, the stronger penalty), fitted on the training rows; and {C: validation AUC}."""
    if not cs:
        raise ValueError("`cs` must list at least one C. Received: cs=()")
    scores, best, previous = {}, None, None
    for c in sorted(cs):  # each C starts from the previous one's solution (a path, as glmnet)
        model = previous = LogisticRegression(c=c).fit(train_x, train_y, train_weight, warm_start=previous)
        scores[c] = roc_auc(validation_y, model.decision_function(validation_x), validation_weight)
        if best is None or scores[c] > scores[best.c]:
            best = model
    return best, scores


def task_logistic_regressions(
    train_x,
    train_labels: Mapping[str, np.ndarray],
    train_masks: Mapping[str, np.ndarray],
    validation_x,
    validation_labels: Mapping[str, np.ndarray],
    validation_masks: Mapping[str, np.ndarray],
    tasks: Sequence[str],
    *,
    cs: Sequence[float] = DEFAULT_CS,
) -> dict[str, LogisticRegression]:
    """One tuned logistic regression per task (rows whose label is absent, mask 0, are left out).

    Fitted on one thread (BLAS pools limited): beside TensorFlow's threads the pools'
    spinning workers made these fits about 15x slower on a loaded 2-core machine."""
    models = {}
    with threadpool_limits(limits=1):
        for task in tasks:
            models[task], _ = tuned_logistic_regression(
                train_x,
                train_labels[task],
                validation_x,
                validation_labels[task],
                train_weight=train_masks.get(task),
                validation_weight=validation_masks.get(task),
                cs=cs,
            )
    return models
