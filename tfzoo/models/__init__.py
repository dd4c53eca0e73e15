"""`tfrs.Model` subclasses of the zoo."""

from tfzoo.models.baselines import MMoE, PLE, SharedBottom, SingleTaskTowers
from tfzoo.models.multitask import MultiTaskModel
from tfzoo.models.ssmtl import SSMTLRetrieval

__all__ = ["MMoE", "MultiTaskModel", "PLE", "SSMTLRetrieval", "SharedBottom", "SingleTaskTowers"]
