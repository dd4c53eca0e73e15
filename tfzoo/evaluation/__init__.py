"""Offline evaluation: exact AUC / AP per task, recall@K of retrieval, tables, FLOPs of traced functions."""

from tfzoo.evaluation.flops import count_float_ops, float_ops_per_example, flops_per_example_of_model
from tfzoo.evaluation.metrics import average_precision, roc_auc, task_metrics
from tfzoo.evaluation.report import format_task_table
from tfzoo.evaluation.retrieval import recall_report, top_k_excluding

__all__ = [
    "average_precision",
    "count_float_ops",
    "float_ops_per_example",
    "flops_per_example_of_model",
    "format_task_table",
    "recall_report",
    "roc_auc",
    "task_metrics",
    "top_k_excluding",
]
