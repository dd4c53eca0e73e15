"""A friend-retrieval run's model score fused with a link heuristic, measured offline.

    python bench/score_fusion.py --runs runs/ablation/ENGB/default/default/seed0 ... \
        [--heuristic adamic_adar] [--weights 0 0.25 0.5 1 2 4 8] [--out docs/results/ssmtl_fusion.jsonl]

Where a two-tower model trails a neighbourhood heuristic, the question is whether the two
rank different friends well (then a fused score beats both) or the heuristic simply knows
more. For each run: the model's logit for (u, v) (query vector . candidate vector, as
served) plus `w x log(1 + heuristic(u, v))`, the heuristic computed from the training graph
(`tfzoo.evaluation.heuristics`); `w` is chosen on validation Recall@50 from `--weights`
and the test report of that `w` is printed next to the model alone (w = 0) and the
heuristic alone, with the same protocol and exclusions as `tfzoo evaluate`. One JSON line
per run (every weight's validation and test report) goes to `--out`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import tfzoo  # noqa: F401  (the Keras 2 switch before TensorFlow)
from tfzoo.evaluation.heuristics import HEURISTICS, HeuristicScores
from tfzoo.evaluation.retrieval import query_users, ranked_candidates, recall_of_rankings
from tfzoo.training import family_for, load_run


class FusedScores:
    """Scores [chunk, users]: model logits + weight x log(1 + heuristic)."""

    def __init__(self, queries: np.ndarray, candidates: np.ndarray, heuristic: HeuristicScores, weight: float):
        self.queries, self.candidates, self.heuristic, self.weight = queries, candidates, heuristic, weight

    def __call__(self, users: np.ndarray) -> np.ndarray:
        scores = self.queries[users] @ self.candidates.T
        if self.weight:
            scores = scores + self.weight * np.log1p(self.heuristic(users))
        return scores


def fusion_reports(run_dir: Path, heuristic_name: str, weights: list[float]) -> dict:
    run = load_run(run_dir)
    data = run.prepared.data
    queries, candidates = (np.asarray(v, np.float64) for v in family_for(run.config.model).user_vectors(run.prepared))
    heuristic = HeuristicScores(heuristic_name, data.train.edges, data.graph.num_users)
    slices = {"cold_start": data.cold_start_users} if len(data.cold_start_users) else None
    reports: dict[str, dict[str, dict]] = {}
    for split, targets, other in (("validation", data.validation, data.test), ("test", data.test, data.validation)):
        users = query_users(targets, data.graph.num_users)
        for weight in weights:
            top = ranked_candidates(FusedScores(queries, candidates, heuristic, weight), data.graph.num_users, users,
                                    [data.train.edges, other], 100)
            reports.setdefault(str(weight), {})[split] = recall_of_rankings(
                top, users, targets, num_users=data.graph.num_users, train_edges=data.train.edges, slices=slices)
    best = max(weights, key=lambda w: reports[str(w)]["validation"]["all"]["recall@50"])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"run": str(run_dir), "split": data.split, "heuristic": heuristic_name, "chosen_weight": best,
            "by_weight": reports, "heuristic_test": metrics["baselines"]["test"][heuristic_name]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="friend-retrieval run directories")
    parser.add_argument("--heuristic", choices=[h for h in HEURISTICS if h != "popularity"], default="adamic_adar")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0])
    parser.add_argument("--out", type=Path, help="JSON lines, one per run (appended)")
    args = parser.parse_args()
    if 0.0 not in args.weights:
        args.weights = [0.0, *args.weights]
    print("| run | scorer | R@50 | R@100 | low R@50 | low R@100 |\n| --- | --- | --- | --- | --- | --- |")
    for run_dir in args.runs:
        row = fusion_reports(run_dir, args.heuristic, args.weights)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            with open(args.out, "a") as file:
                file.write(json.dumps({**row, "command": " ".join(["python", *sys.argv])}) + "\n")
        for label, report in ((args.heuristic, row["heuristic_test"]), ("model", row["by_weight"]["0.0"]["test"]),
                              (f"model + {row['chosen_weight']} x log(1 + {args.heuristic})",
                               row["by_weight"][str(row["chosen_weight"])]["test"])):
            print(f"| {run_dir} | {label} | {report['all']['recall@50']:.3f} | {report['all']['recall@100']:.3f} | "
                  f"{report['low_degree']['recall@50']:.3f} | {report['low_degree']['recall@100']:.3f} |")


if __name__ == "__main__":
    main()
