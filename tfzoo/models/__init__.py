"""`tfrs.Model` subclasses of the zoo."""

from tfzoo.models.baselines import MMoE, PLE, SharedBottom, SingleTaskTowers
from tfzoo.models.multitask import MultiTaskModel

__all__ = ["MMoE", "MultiTaskModel", "PLE", "SharedBottom", "SingleTaskTowers"]
