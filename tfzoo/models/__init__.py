"""`tfrs.Model` subclasses of the zoo."""

from tfzoo.models.baselines import MMoE, PLE, SharedBottom, SingleTaskTowers
from tfzoo.models.grec import ExtractedGRec, GRec
from tfzoo.models.multitask import MultiTaskModel
from tfzoo.models.supermoe import MaskedChannelPretrainer, SuperMoE
from tfzoo.models.ssmtl import SSMTLRetrieval, calibrated_weights, encoder_gradient_norms

__all__ = [
    "ExtractedGRec",
    "GRec",
    "MMoE",
    "MaskedChannelPretrainer",
    "MultiTaskModel",
    "PLE",
    "SSMTLRetrieval",
    "SharedBottom",
    "SingleTaskTowers",
    "SuperMoE",
    "calibrated_weights",
    "encoder_gradient_norms",
]
