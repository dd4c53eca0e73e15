"""Offline evaluation: exact AUC / AP per task, and tables of them."""

from tfzoo.evaluation.metrics import average_precision, roc_auc, task_metrics
from tfzoo.evaluation.report import format_task_table

__all__ = ["average_precision", "format_task_table", "roc_auc", "task_metrics"]
