"""Inference cost of MixtureOfExperts per routing, and of extracted task-sentence experts.

For 8, 16, 32 and 64 experts at top-4, measures side by side in one run, on the same
token batch ([batch, tokens, d], a GRec task sentence of user / item / context / task
tokens):

- token routing (capacity factor 2, the paper's setting), sentence routing (factor 2),
  task routing, task-sentence routing (both dropless);
- dense MMoE (every expert, softmax gates; top-k does not apply);
- the extracted task-sentence experts of one task (`MixtureOfExperts.extract`, fixed
  route: the graph holds that task's 4 experts only).

FLOPs per example come from TF's graph profiler on the traced function
(`tfzoo.evaluation.float_ops_per_example`); examples/s is the median over interleaved
rounds of timed calls of the traced function. Ratios checked against the issue's
targets are printed at the end. Example:

    .venv/bin/python bench/moe_routing.py            # full
    .venv/bin/python bench/moe_routing.py --quick    # seconds, smaller batch
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfzoo  # noqa: E402,F401  (Keras 2 switch)
from tfzoo.evaluation import float_ops_per_example  # noqa: E402
from tfzoo.layers import MixtureOfExperts  # noqa: E402

NUM_FLOWS, NUM_USE_CASES = 3, 4  # 12 tasks, as in the paper's Table 1 (flows x use cases)


def build_variants(num_experts: int, inputs: tf.Tensor, top_k: int, expert_units) -> dict:
    batch = int(inputs.shape[0])
    rng = np.random.default_rng(num_experts)
    flows = rng.integers(0, NUM_FLOWS, batch)
    use_cases = rng.integers(0, NUM_USE_CASES, batch)
    task_ids = tf.constant(flows * NUM_USE_CASES + use_cases, tf.int32)  # [batch]
    sentences = tf.constant(np.stack([flows, NUM_FLOWS + use_cases], 1), tf.int32)  # [batch, 2]
    variants = {}

    def add(name, layer, routing_ids=None, **call):
        layer(inputs, routing_ids=routing_ids, **call) if routing_ids is not None or not call else layer(inputs, **call)
        fn = tf.function(lambda x: layer(x, routing_ids=routing_ids) if routing_ids is not None else layer(x, **call))
        variants[name] = fn

    add("token", MixtureOfExperts(num_experts, expert_units, router="token", top_k=top_k, capacity_factor=2.0))
    add("sentence", MixtureOfExperts(num_experts, expert_units, router="sentence", top_k=top_k, capacity_factor=2.0))
    add(
        "task",
        MixtureOfExperts(
            num_experts,
            expert_units,
            router="task",
            router_options={"num_tasks": NUM_FLOWS * NUM_USE_CASES},
            top_k=top_k,
        ),
        task_ids,
    )
    task_sentence = MixtureOfExperts(
        num_experts,
        expert_units,
        router="task_sentence",
        router_options={"vocabulary_size": NUM_FLOWS + NUM_USE_CASES},
        top_k=top_k,
    )
    add("task_sentence", task_sentence, sentences)
    add("dense_mmoe", MixtureOfExperts(num_experts, expert_units, router="dense", top_k=None))
    extracted = task_sentence.extract([[0, NUM_FLOWS + 0]])  # one task: (flow 0, use case 0)
    add("extracted_task_sentence", extracted, route=0)
    return variants


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=256, help="expert hidden width (experts are d -> hidden -> d)")
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument("--experts", default="8,16,32,64")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=10, help="timed calls per variant per round")
    parser.add_argument("--quick", action="store_true", help="batch 64, 8 experts, 3 rounds of 3 calls")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.experts, args.rounds, args.calls = 64, "8", 3, 3

    tf.keras.utils.set_random_seed(0)
    inputs = tf.random.normal([args.batch, args.tokens, args.dim])
    expert_units = (args.hidden, args.dim)
    experts = [int(e) for e in args.experts.split(",")]
    variants = {e: build_variants(e, inputs, args.top_k, expert_units) for e in experts}

    flops = {e: {name: float_ops_per_example(fn, inputs) for name, fn in fns.items()} for e, fns in variants.items()}
    for fns in variants.values():
        for fn in fns.values():
            for _ in range(3):  # warm-up
                fn(inputs).numpy()
    seconds = {e: {name: [] for name in fns} for e, fns in variants.items()}
    for _ in range(args.rounds):  # interleaved, so load changes hit every variant alike
        for e, fns in variants.items():
            for name, fn in fns.items():
                started = time.perf_counter()
                for _ in range(args.calls):
                    out = fn(inputs)
                out.numpy()
                seconds[e][name].append((time.perf_counter() - started) / args.calls)
    throughput = {e: {n: args.batch / statistics.median(s) for n, s in per.items()} for e, per in seconds.items()}

    names = list(next(iter(variants.values())))
    print(
        f"MixtureOfExperts inference, batch {args.batch} x {args.tokens} tokens x d={args.dim}, "
        f"experts {args.dim}->{args.hidden}->{args.dim}, top-{args.top_k}; load average {os.getloadavg()}"
    )
    print(f"{'routing':<26}" + "".join(f"{f'E={e} MFLOP/ex':>15}{'ex/s':>10}" for e in experts))
    for name in names:
        print(f"{name:<26}" + "".join(f"{flops[e][name] / 1e6:>15.3f}{throughput[e][name]:>10.0f}" for e in experts))

    lo, hi = experts[0], experts[-1]
    ratios = {
        f"extracted E={hi} / E={lo} (FLOPs)": flops[hi]["extracted_task_sentence"]
        / flops[lo]["extracted_task_sentence"],
        f"extracted E={hi} / E={lo} (time)": throughput[lo]["extracted_task_sentence"]
        / throughput[hi]["extracted_task_sentence"],
        f"token / extracted at E={lo} (FLOPs)": flops[lo]["token"] / flops[lo]["extracted_task_sentence"],
        f"token / extracted at E={lo} (time)": throughput[lo]["extracted_task_sentence"] / throughput[lo]["token"],
        f"dense MMoE E={hi} / E={lo} (FLOPs)": flops[hi]["dense_mmoe"] / flops[lo]["dense_mmoe"],
        f"dense MMoE E={hi} / E={lo} (time)": throughput[lo]["dense_mmoe"] / throughput[hi]["dense_mmoe"],
        f"task-sentence E={hi} / E={lo} (FLOPs)": flops[hi]["task_sentence"] / flops[lo]["task_sentence"],
    }
    targets = {
        f"extracted E={hi} / E={lo} (time)": ("<=", 1.2),
        f"token / extracted at E={lo} (FLOPs)": (">=", 2.0),
        f"token / extracted at E={lo} (time)": (">=", 2.0),
        f"dense MMoE E={hi} / E={lo} (time)": (">", 1.0),
    }
    print("\nratios")
    for name, value in ratios.items():
        target = targets.get(name)
        verdict = ""
        if target:
            ok = (
                value <= target[1]
                if target[0] == "<="
                else value >= target[1]
                if target[0] == ">="
                else value > target[1]
            )
            verdict = f"  target {target[0]} {target[1]}: {'met' if ok else 'NOT met'}"
        print(f"  {name:<42}{value:8.2f}{verdict}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "args": vars(args) | {"json": str(args.json)},
                    "flops": flops,
                    "examples_per_second": throughput,
                    "ratios": ratios,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
