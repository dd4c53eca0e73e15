"""Offline evaluation: exact AUC / AP per task, recall@K of retrieval, the link-prediction
heuristics beside it, tuned logistic regression (the sequence models' simple baseline),
paired bootstrap intervals, tables, FLOPs of traced functions."""

from tfzoo.evaluation.flops import count_float_ops, float_ops_per_example, flops_per_example_of_model
from tfzoo.evaluation.heuristics import HEURISTICS, HeuristicScores, best_heuristic, heuristic_reports
from tfzoo.evaluation.intervals import minimum_detectable_effect, paired_bootstrap
from tfzoo.evaluation.logistic import LogisticRegression, task_logistic_regressions, tuned_logistic_regression
from tfzoo.evaluation.metrics import average_precision, roc_auc, task_metrics
from tfzoo.evaluation.report import format_task_table
from tfzoo.evaluation.retrieval import ranked_candidates, recall_report, top_k_excluding

__all__ = [
    "HEURISTICS",
    "HeuristicScores",
    "LogisticRegression",
    "average_precision",
    "best_heuristic",
    "count_float_ops",
    "float_ops_per_example",
    "flops_per_example_of_model",
    "format_task_table",
    "heuristic_reports",
    "minimum_detectable_effect",
    "paired_bootstrap",
    "ranked_candidates",
    "recall_report",
    "roc_auc",
    "task_logistic_regressions",
    "task_metrics",
    "top_k_excluding",
    "tuned_logistic_regression",
]
