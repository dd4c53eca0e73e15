"""Reusable Keras layers, each registered under package "tfzoo".

Keras 2 (`tf_keras`) layers inside tfzoo; the `PORTABLE_LAYERS` are Keras 3 layers in a
program that sets `TF_USE_LEGACY_KERAS=0` before importing tfzoo (`tfzoo.layers.backend`).
The others read tfzoo's feature specs and stay Keras 2.
"""

from tfzoo.layers.behaviour_sequence_encoder import BehaviourSequenceEncoder
from tfzoo.layers.cgc import CustomizedGateControl
from tfzoo.layers.experts import Experts
from tfzoo.layers.extracted_experts import ExtractedExperts
from tfzoo.layers.feature_encoder import FeatureEncoder
from tfzoo.layers.mlp import MLP
from tfzoo.layers.mmoe import MultiGateMixtureOfExperts
from tfzoo.layers.moe import MixtureOfExperts
from tfzoo.layers.moe_self_attention import MoEMultiHeadSelfAttention
from tfzoo.layers.moe_sequence_encoder import MoESequenceEncoder
from tfzoo.layers.moe_transformer_block import MoETransformerBlock
from tfzoo.layers.multi_channel_projection import MultiChannelProjection
from tfzoo.layers.multi_query_attention import MultiQueryAttention
from tfzoo.layers.parallel_transformer import ParallelTransformerBlock
from tfzoo.layers.routers import DenseRouter, Router, SentenceRouter, TaskRouter, TaskSentenceRouter, TokenRouter
from tfzoo.layers.row_tokens import RowTokens
from tfzoo.layers.wide_deep_encoder import WideDeepEncoder

__all__ = [
    "BehaviourSequenceEncoder",
    "CustomizedGateControl",
    "DenseRouter",
    "Experts",
    "ExtractedExperts",
    "FeatureEncoder",
    "MLP",
    "MixtureOfExperts",
    "MoEMultiHeadSelfAttention",
    "MoESequenceEncoder",
    "MoETransformerBlock",
    "MultiChannelProjection",
    "MultiGateMixtureOfExperts",
    "MultiQueryAttention",
    "ParallelTransformerBlock",
    "Router",
    "RowTokens",
    "SentenceRouter",
    "TaskRouter",
    "TaskSentenceRouter",
    "TokenRouter",
    "WideDeepEncoder",
]

# The layers that run on either Keras (tested under Keras 3 by tests/layers/test_keras3.py):
# all but the feature encoders, which read tfzoo's feature specs, and the routers' base.
PORTABLE_LAYERS = tuple(
    name
    for name in __all__
    if name not in ("BehaviourSequenceEncoder", "FeatureEncoder", "RowTokens", "WideDeepEncoder", "Router")
)
