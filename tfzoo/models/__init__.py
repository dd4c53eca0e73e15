"""`tfrs.Model` subclasses of the zoo."""

from tfzoo.models.base import LossTerm, ZooModel
from tfzoo.models.baselines import PLE, MMoE, SharedBottom, SingleTaskTowers
from tfzoo.models.grec import ExtractedGRec, GRec
from tfzoo.models.multitask import MultiTaskModel
from tfzoo.models.ssmtl import SSMTLRetrieval, calibrated_weights, encoder_gradient_norms
from tfzoo.models.supermoe import MaskedChannelPretrainer, SuperMoE

__all__ = [
    "ExtractedGRec",
    "GRec",
    "LossTerm",
    "MMoE",
    "MaskedChannelPretrainer",
    "MultiTaskModel",
    "PLE",
    "SSMTLRetrieval",
    "SharedBottom",
    "SingleTaskTowers",
    "SuperMoE",
    "ZooModel",
    "calibrated_weights",
    "encoder_gradient_norms",
]
