"""Training objectives that are not Keras built-ins (the SSMTL self-supervised losses)."""

from tfzoo.objectives.cca_ssg import cca_ssg_loss, standardize_features
from tfzoo.objectives.graph_mae import scaled_cosine_error

__all__ = ["cca_ssg_loss", "scaled_cosine_error", "standardize_features"]
