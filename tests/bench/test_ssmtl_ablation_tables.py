"""The SSMTL ablation's tables: a ladder grid's steps, each against the step before it."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import ssmtl_ablation  # noqa: E402 (a bench script, imported by its path)

USERS = 40


def _rows(variants: dict[str, list[int]]) -> list[dict]:
    """A baselines row (USERS test users, 2 targets each) and one seed-0 run per variant,
    each user finding `hits` of its 2 targets at K 50 and 100."""
    base = {
        "kind": "baselines",
        "region": "ES",
        "data_options": {},
        "split": "a split",
        "users": list(range(USERS)),
        "targets": [2] * USERS,
        "low_degree_users": list(range(10)),
        "cold_start_users": [],
        "heuristics": {},
    }
    runs = [
        {"kind": "run", "region": "ES", "data_options": {}, "grid": "levers", "variant": name, "seed": 0}
        | {"best_epoch": 1, "hits@50": hits, "hits@100": hits}
        for name, hits in variants.items()
    ]
    return [base, *runs]


def test_each_step_is_paired_with_the_step_before_it_and_gaps_are_not_bridged():
    ladder = ssmtl_ablation.LADDERS["levers"]
    assert ladder[:3] == ["previous model", "+ id embeddings", "+ concat readout"]
    text = ssmtl_ablation.tables(
        _rows(
            {
                ladder[0]: [0] * USERS,  # recall 0
                ladder[1]: [1] * USERS,  # recall 0.5: +0.5 on the step before it
                ladder[3]: [2] * USERS,  # its step before (ladder[2]) was not run
                ladder[4]: [2] * USERS,  # +0 on ladder[3]
            }
        )
    )
    steps = text.split("each step minus the step before it")[1].splitlines()
    rows = {line.split(" | ")[0].strip("| "): line for line in steps if line.startswith("| +")}
    assert sorted(rows) == sorted([ladder[1], ladder[4]])  # ladder[3] has no step before it
    assert "+0.500 [+0.500, +0.500]" in rows[ladder[1]]
    assert "+0.000 [+0.000, +0.000]" in rows[ladder[4]]
