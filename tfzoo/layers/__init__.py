"""Reusable Keras layers (Keras 2 / tf_keras), each registered under package "tfzoo"."""

from tfzoo.layers.cgc import CustomizedGateControl
from tfzoo.layers.experts import Experts
from tfzoo.layers.feature_encoder import FeatureEncoder
from tfzoo.layers.mlp import MLP
from tfzoo.layers.mmoe import MultiGateMixtureOfExperts

__all__ = ["CustomizedGateControl", "Experts", "FeatureEncoder", "MLP", "MultiGateMixtureOfExperts"]
