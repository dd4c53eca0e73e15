"""Multi-task baselines: single-task towers, shared bottom, MMoE and PLE."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf

from tfzoo.data.features import DatasetSpec
from tfzoo.layers.cgc import CustomizedGateControl
from tfzoo.layers.feature_encoder import FeatureEncoder
from tfzoo.layers.kernel_options import check_kernel_options, kernel_options, kernel_options_config
from tfzoo.layers.mlp import MLP
from tfzoo.layers.mmoe import MultiGateMixtureOfExperts
from tfzoo.models.multitask import MultiTaskModel


def _tower(
    units: Sequence[int], dropout: float, name: str, kernel_options: Mapping[str, Any] | None = None
) -> tf.keras.Sequential:
    options = dict(kernel_options or {})
    return tf.keras.Sequential(
        [MLP(units, dropout=dropout, **options), tf.keras.layers.Dense(1, name="logit", **options)], name=name
    )


class DenseRanker(MultiTaskModel):
    """Base of the baselines built from dense layers: `kernel_initializer` and
    `kernel_regularizer` (anything `tf.keras.initializers.get` / `tf.keras.regularizers.get`
    take: a name, a config dict, an object; None: each layer's default) apply to every dense
    kernel of the model (MLPs, experts, towers and their logit layers), e.g. `tfzoo train mmoe --option
    kernel_regularizer='{"class_name": "L2", "config": {"l2": 1e-5}}'`. Embedding tables
    and the gates keep their own initialisation and no regularizer (`tfzoo.layers.kernel_options`)."""

    def __init__(self, *, kernel_initializer=None, kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        check_kernel_options(kernel_initializer, kernel_regularizer)
        self.kernel_initializer = kernel_initializer
        self.kernel_regularizer = kernel_regularizer

    @property
    def kernel_options(self) -> dict[str, Any]:
        """The arguments every dense layer of the model is built with: those given (None
        keeps each layer's own default, so a model without them is built as before)."""
        return kernel_options(self)

    def get_config(self):
        return {**super().get_config(), **kernel_options_config(self)}


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class SingleTaskTowers(DenseRanker):
    """One independent network per task (own embeddings and MLP): the no-sharing baseline.

    Args:
      feature_spec, tasks, task_weights: see `MultiTaskModel`; kernel_initializer,
        kernel_regularizer: see `DenseRanker`.
      embedding_dim: embedding width of categorical features.
      hidden_units: MLP widths of each task's network.
      dropout: dropout after each hidden layer.
    """

    def __init__(
        self,
        *,
        feature_spec: DatasetSpec | Mapping[str, Any],
        tasks: Sequence[str] | None = None,
        task_weights: Mapping[str, float] | None = None,
        embedding_dim: int = 8,
        hidden_units: Sequence[int] = (128, 64),
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(feature_spec=feature_spec, tasks=tasks, task_weights=task_weights, **kwargs)
        self.embedding_dim = embedding_dim
        self.hidden_units = tuple(hidden_units)
        self.dropout = dropout
        self.encoders = {
            t: FeatureEncoder(self.feature_spec, embedding_dim=embedding_dim, name=f"{t}_encoder") for t in self.tasks
        }
        self.towers = {t: _tower(self.hidden_units, dropout, f"{t}_tower", self.kernel_options) for t in self.tasks}

    def task_logits(self, features, training=False):
        return {
            t: tf.squeeze(self.towers[t](self.encoders[t](features), training=training), axis=-1) for t in self.tasks
        }

    def get_config(self):
        return {
            **super().get_config(),
            "embedding_dim": self.embedding_dim,
            "hidden_units": list(self.hidden_units),
            "dropout": self.dropout,
        }


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class SharedBottom(DenseRanker):
    """Hard parameter sharing: one bottom MLP, one tower per task.

    Args:
      feature_spec, tasks, task_weights: see `MultiTaskModel`; kernel_initializer,
        kernel_regularizer: see `DenseRanker`.
      embedding_dim: embedding width of categorical features.
      bottom_units: widths of the shared MLP.
      tower_units: widths of each task tower (a logit layer follows).
      dropout: dropout after each hidden layer.
    """

    def __init__(
        self,
        *,
        feature_spec: DatasetSpec | Mapping[str, Any],
        tasks: Sequence[str] | None = None,
        task_weights: Mapping[str, float] | None = None,
        embedding_dim: int = 8,
        bottom_units: Sequence[int] = (128,),
        tower_units: Sequence[int] = (64,),
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(feature_spec=feature_spec, tasks=tasks, task_weights=task_weights, **kwargs)
        self.embedding_dim = embedding_dim
        self.bottom_units = tuple(bottom_units)
        self.tower_units = tuple(tower_units)
        self.dropout = dropout
        self.encoder = FeatureEncoder(self.feature_spec, embedding_dim=embedding_dim, name="encoder")
        self.trunk = MLP(self.bottom_units, dropout=dropout, name="bottom", **self.kernel_options)
        self.towers = {t: _tower(self.tower_units, dropout, f"{t}_tower", self.kernel_options) for t in self.tasks}

    def get_config(self):
        return {
            **super().get_config(),
            "embedding_dim": self.embedding_dim,
            "bottom_units": list(self.bottom_units),
            "tower_units": list(self.tower_units),
            "dropout": self.dropout,
        }


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class MMoE(DenseRanker):
    """Multi-gate Mixture-of-Experts (Ma et al., KDD 2018): shared experts, a gate per task.

    Args:
      feature_spec, tasks, task_weights: see `MultiTaskModel`; kernel_initializer,
        kernel_regularizer: see `DenseRanker`.
      embedding_dim: embedding width of categorical features.
      num_experts: experts shared by all tasks.
      expert_units: widths of each expert's layers.
      tower_units: widths of each task tower (a logit layer follows).
      dropout: dropout in the towers.
    """

    def __init__(
        self,
        *,
        feature_spec: DatasetSpec | Mapping[str, Any],
        tasks: Sequence[str] | None = None,
        task_weights: Mapping[str, float] | None = None,
        embedding_dim: int = 8,
        num_experts: int = 8,
        expert_units: Sequence[int] = (64,),
        tower_units: Sequence[int] = (32,),
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(feature_spec=feature_spec, tasks=tasks, task_weights=task_weights, **kwargs)
        self.embedding_dim = embedding_dim
        self.num_experts = num_experts
        self.expert_units = tuple(expert_units)
        self.tower_units = tuple(tower_units)
        self.dropout = dropout
        self.encoder = FeatureEncoder(self.feature_spec, embedding_dim=embedding_dim, name="encoder")
        self.trunk = MultiGateMixtureOfExperts(
            len(self.tasks), num_experts, self.expert_units, expert_options=self.kernel_options, name="mmoe"
        )
        self.towers = {t: _tower(self.tower_units, dropout, f"{t}_tower", self.kernel_options) for t in self.tasks}

    def get_config(self):
        return {
            **super().get_config(),
            "embedding_dim": self.embedding_dim,
            "num_experts": self.num_experts,
            "expert_units": list(self.expert_units),
            "tower_units": list(self.tower_units),
            "dropout": self.dropout,
        }


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class PLE(DenseRanker):
    """Progressive Layered Extraction (Tang et al., RecSys 2020): stacked CGC levels.

    Args:
      feature_spec, tasks, task_weights: see `MultiTaskModel`; kernel_initializer,
        kernel_regularizer: see `DenseRanker`.
      embedding_dim: embedding width of categorical features.
      num_levels: number of extraction (CGC) levels; 1 is plain CGC.
      num_task_experts: experts owned by each task, per level.
      num_shared_experts: shared experts, per level.
      expert_units: widths of each expert's layers.
      tower_units: widths of each task tower (a logit layer follows).
      dropout: dropout in the towers.
    """

    def __init__(
        self,
        *,
        feature_spec: DatasetSpec | Mapping[str, Any],
        tasks: Sequence[str] | None = None,
        task_weights: Mapping[str, float] | None = None,
        embedding_dim: int = 8,
        num_levels: int = 2,
        num_task_experts: int = 2,
        num_shared_experts: int = 2,
        expert_units: Sequence[int] = (64,),
        tower_units: Sequence[int] = (32,),
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(feature_spec=feature_spec, tasks=tasks, task_weights=task_weights, **kwargs)
        if num_levels < 1:
            raise ValueError(f"`num_levels` must be >= 1. Received: num_levels={num_levels}")
        self.embedding_dim = embedding_dim
        self.num_levels = num_levels
        self.num_task_experts = num_task_experts
        self.num_shared_experts = num_shared_experts
        self.expert_units = tuple(expert_units)
        self.tower_units = tuple(tower_units)
        self.dropout = dropout
        self.encoder = FeatureEncoder(self.feature_spec, embedding_dim=embedding_dim, name="encoder")
        self.trunk = tf.keras.Sequential(
            [
                CustomizedGateControl(
                    len(self.tasks),
                    num_task_experts,
                    num_shared_experts,
                    self.expert_units,
                    shared_output=level < num_levels - 1,
                    expert_options=self.kernel_options,
                    name=f"cgc_{level}",
                )
                for level in range(num_levels)
            ],
            name="extraction",
        )
        self.towers = {t: _tower(self.tower_units, dropout, f"{t}_tower", self.kernel_options) for t in self.tasks}

    def get_config(self):
        return {
            **super().get_config(),
            "embedding_dim": self.embedding_dim,
            "num_levels": self.num_levels,
            "num_task_experts": self.num_task_experts,
            "num_shared_experts": self.num_shared_experts,
            "expert_units": list(self.expert_units),
            "tower_units": list(self.tower_units),
            "dropout": self.dropout,
        }
