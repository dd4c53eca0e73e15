"""Offline evaluation: exact AUC / AP per task, tables of them, FLOPs of traced functions."""

from tfzoo.evaluation.flops import count_float_ops, float_ops_per_example, flops_per_example_of_model
from tfzoo.evaluation.metrics import average_precision, roc_auc, task_metrics
from tfzoo.evaluation.report import format_task_table

__all__ = [
    "average_precision",
    "count_float_ops",
    "float_ops_per_example",
    "flops_per_example_of_model",
    "format_task_table",
    "roc_auc",
    "task_metrics",
]
