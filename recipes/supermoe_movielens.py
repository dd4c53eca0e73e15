"""SUPER-MoE on MovieLens-100K behaviour sequences: pre-train, fine-tune, compare, export.

    python recipes/supermoe_movielens.py --data PATH/ml-100k --embeddings PATH/derived \
        [--seeds 0 1 2] [--out results.json] [--export-base savedmodels]
    python recipes/supermoe_movielens.py --demo      # generated sequences, < 60 s

Data (`tfzoo.data.behaviour_sequences`): one example per `--stride`-th rating of each
user: the previous `--length - 1` behaviours + the target behaviour (rating masked);
tasks like (target rating >= 4), female, over_34; split by the target's timestamp
(earliest 80% train, next 10% validation, last 10% test).

Per seed, on the same splits:
- supermoe: MCP pre-training (item id by sampled softmax, rating by softmax) of the MoE
  encoder on the training sequences, then fine-tuning with equal task weights;
- supermoe_no_pretrain: the same without pre-training;
- supermoe_auc_weights: pre-trained, task weights driven by validation AUC (eq. 10);
- bert: the same pipeline with a dense encoder (one expert per mixture);
- mmoe, ple: the tabular baselines on the flat view of the same examples.
Then the frozen user embeddings H of the pre-trained encoders (no fine-tuning) feed a
logistic-regression probe per task (Table 4 analogue): AUC and recall@K%.
Prints the tables, writes `--out` (JSON) and exports the last seed's supermoe.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

import tfzoo
from tfzoo.data.behaviour_sequences import (
    BEHAVIOUR_TASKS,
    channel_columns,
    make_behaviour_sequences,
    movielens_behaviour_sequences,
)
from tfzoo.evaluation.metrics import roc_auc, task_metrics
from tfzoo.export.supermoe import export_supermoe
from tfzoo.models.registry import build_model
from tfzoo.models.supermoe import MaskedChannelPretrainer, SuperMoE, masked_max_pool


def recall_at_top(labels, scores, fraction, mask):
    """Share of the positives found in the top `fraction` of rows by score."""
    keep = mask > 0
    labels, scores = labels[keep], scores[keep]
    top = np.argsort(-scores, kind="stable")[: max(1, int(round(fraction * len(scores))))]
    return float(labels[top].sum() / max(labels.sum(), 1.0))


def sequences(data, batch_size, *, labels=True, shuffle_seed=None):
    columns = channel_columns(data)
    dataset = tf.data.Dataset.from_tensor_slices((columns, data.labels, data.label_masks) if labels else columns)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(data), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size)


def pretrain(encoder, train, args, seed, directory):
    tf.keras.utils.set_random_seed(seed)
    model = MaskedChannelPretrainer(encoder=encoder, masked_channels=["item", "rating"], mask_rate=0.2,
                                    num_sampled=args.num_sampled, seed=seed)
    model.compile(optimizer=tf.keras.optimizers.Adam(args.learning_rate))
    history = model.fit(sequences(train, args.batch_size, labels=False, shuffle_seed=seed),
                        epochs=args.pretrain_epochs, verbose=0)
    path = tf.train.Checkpoint(encoder=model.encoder).write(str(Path(directory) / "encoder"))
    return model, path, {k: float(v[-1]) for k, v in history.history.items()}


def fine_tune(encoder, train, validation, args, seed, *, checkpoint=None, task_weight_rate=0.0):
    tf.keras.utils.set_random_seed(seed)
    model = SuperMoE(encoder=encoder, tasks=BEHAVIOUR_TASKS, task_weight_rate=task_weight_rate)
    model(channel_columns(train.take(np.arange(2))))
    if checkpoint is not None:
        model.load_encoder(checkpoint)
    model.compile(optimizer=tf.keras.optimizers.Adam(args.learning_rate))
    data = sequences(train, args.batch_size, shuffle_seed=seed)
    if task_weight_rate:
        data = tf.data.Dataset.zip((data, sequences(validation, args.batch_size, shuffle_seed=seed).repeat()))
    model.fit(data, epochs=args.epochs, verbose=0)
    return model


def evaluate(model, test, args):
    predictions = model.predict(sequences(test, 1024, labels=False), verbose=0)
    return task_metrics(test.labels, {t: np.asarray(p) for t, p in predictions.items()}, test.label_masks)


def tabular_baseline(name, train, validation, test, args, seed):
    spec = train.spec.fit(train.features)
    tf.keras.utils.set_random_seed(seed)
    model = build_model(name, spec, options={"num_experts": 4, "expert_units": (32,), "tower_units": (16,)}
                                     if name == "mmoe" else {"expert_units": (32,), "tower_units": (16,)})
    model.compile(optimizer=tf.keras.optimizers.Adam(args.learning_rate))
    model.fit(tfzoo.data.make_dataset(train, spec, batch_size=args.batch_size, shuffle=True, seed=seed),
              epochs=args.epochs, verbose=0)
    predictions = model.predict(tfzoo.data.make_dataset(test, spec, batch_size=1024, with_labels=False), verbose=0)
    return task_metrics(test.labels, {t: np.asarray(p) for t, p in predictions.items()}, test.label_masks)


def frozen_embedding_probe(encoder_model, train, test, seed, fractions=(0.1, 0.5)):
    """Logistic regression per task on the frozen H = MaxPooling(h_o) of a pre-trained encoder."""
    def embed(data):
        batches = [masked_max_pool(encoder_model.encoder(b), encoder_model.encoder.padding_mask(b))
                   for b in sequences(data, 1024, labels=False)]
        return np.concatenate([b.numpy() for b in batches])

    train_h, test_h = embed(train), embed(test)
    mean, std = train_h.mean(0), train_h.std(0) + 1e-6
    results = {}
    for task in BEHAVIOUR_TASKS:
        tf.keras.utils.set_random_seed(seed)
        probe = tf.keras.Sequential([tf.keras.layers.Dense(1)])
        probe.compile(optimizer=tf.keras.optimizers.Adam(1e-2),
                      loss=tf.keras.losses.BinaryCrossentropy(from_logits=True))
        probe.fit((train_h - mean) / std, train.labels[task], sample_weight=train.label_masks[task],
                  batch_size=512, epochs=5, verbose=0)
        scores = probe.predict((test_h - mean) / std, verbose=0)[:, 0]
        mask = test.label_masks[task]
        results[task] = {"auc": roc_auc(test.labels[task], scores, mask),
                         **{f"recall@{int(f * 100)}%": recall_at_top(test.labels[task], scores, f, mask)
                            for f in fractions}}
    return results


def summarize(runs):
    """{model: {task: "mean +/- std"}} over seeds."""
    table = {}
    for model, per_seed in runs.items():
        table[model] = {}
        for task in BEHAVIOUR_TASKS:
            values = [r[task]["auc"] for r in per_seed]
            table[model][task] = f"{np.mean(values):.4f} +/- {np.std(values):.4f}"
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the ml-100k folder")
    parser.add_argument("--embeddings", help="folder of the item text embeddings (.npy + _item_ids.npy)")
    parser.add_argument("--demo", action="store_true",
                        help="generated sequences, tiny model, one seed, SUPER-MoE only (no baselines)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--length", type=int, default=20)
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--experts", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--pretrain-epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--num-sampled", type=int, default=64)
    parser.add_argument("--task-weight-rate", type=float, default=0.01)
    parser.add_argument("--only", nargs="+", help="fine-tune only these models (pre-training the MoE encoder still runs)")
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--export-base", default="savedmodels")
    args = parser.parse_args()

    if args.demo:
        data, sizes = make_behaviour_sequences(200, length=10)
        args.seeds, args.units, args.epochs, args.pretrain_epochs, args.num_sampled = [0], 16, 2, 1, 32
    else:
        if not args.data or not args.embeddings:
            parser.error("--data and --embeddings are required without --demo")
        movielens = tfzoo.data.read_movielens_100k(args.data, embeddings_dir=args.embeddings)
        data, sizes = movielens_behaviour_sequences(movielens, length=args.length, stride=args.stride)
    train, validation, test = tfzoo.data.ordered_split(data, data.features["timestamp"], (0.8, 0.1, 0.1))
    unseen = np.setdiff1d(test.features["user_id"], train.features["user_id"]).size
    print(f"{len(train)} train / {len(validation)} validation / {len(test)} test examples; "
          f"{unseen} of {np.unique(test.features['user_id']).size} test users have no training example")

    moe = dict(units=args.units, category_channels=sizes.category_channels, id_channels=sizes.id_channels,
               dense_channels=sizes.dense_channels, category_dim=8, id_dim=args.units, num_blocks=1, num_heads=2,
               key_dim=args.units // 2, ffn_units=2 * args.units, num_experts=args.experts)
    dense = {**moe, "num_experts": 1}
    runs, probes, timings, pretraining, final = {}, {}, {}, {}, None
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.time()
            moe_pretrained, moe_checkpoint, pretraining[f"supermoe/{seed}"] = pretrain(moe, train, args, seed, f"{tmp}/moe")
            probes.setdefault("supermoe (frozen H)", []).append(frozen_embedding_probe(moe_pretrained, train, test, seed))
            if not args.demo and (not args.only or "bert" in args.only):
                bert_pretrained, bert_checkpoint, pretraining[f"bert/{seed}"] = pretrain(
                    dense, train, args, seed, f"{tmp}/bert")
                probes.setdefault("bert (frozen H)", []).append(frozen_embedding_probe(bert_pretrained, train, test, seed))
            models = {
                "supermoe": lambda: fine_tune(moe, train, validation, args, seed, checkpoint=moe_checkpoint),
                "supermoe_no_pretrain": lambda: fine_tune(moe, train, validation, args, seed),
                "supermoe_auc_weights": lambda: fine_tune(moe, train, validation, args, seed, checkpoint=moe_checkpoint,
                                                          task_weight_rate=args.task_weight_rate),
                "bert": lambda: fine_tune(dense, train, validation, args, seed, checkpoint=bert_checkpoint),
            }
            if args.demo:  # the SUPER-MoE pipeline only
                models = {"supermoe": models["supermoe"]}
            elif args.only:
                models = {name: models[name] for name in args.only if name in models}
            for name, build in models.items():
                began = time.time()
                model = build()
                runs.setdefault(name, []).append(evaluate(model, test, args))
                if name == "supermoe_auc_weights":
                    runs[name][-1]["learned_task_weights"] = model.current_task_weights()
                final = model if name == "supermoe" or final is None else final
                timings.setdefault(name, []).append(time.time() - began)
            for name in () if args.demo else [n for n in ("mmoe", "ple") if not args.only or n in args.only]:
                began = time.time()
                runs.setdefault(name, []).append(tabular_baseline(name, train, validation, test, args, seed))
                timings.setdefault(name, []).append(time.time() - began)
            print(f"seed {seed} done in {time.time() - start:.0f} s")

    table = summarize(runs)
    print(json.dumps(table, indent=1))
    probe_table = {name: {task: {metric: f"{np.mean([p[task][metric] for p in runs_]):.4f} +/- "
                                         f"{np.std([p[task][metric] for p in runs_]):.4f}"
                                 for metric in runs_[0][task]} for task in BEHAVIOUR_TASKS}
                   for name, runs_ in probes.items()}
    print(json.dumps(probe_table, indent=1))
    path = export_supermoe(final, None, args.export_base, "supermoe")
    print(f"exported {path}")
    if args.out:
        Path(args.out).write_text(json.dumps({
            "args": vars(args), "examples": {"train": len(train), "validation": len(validation), "test": len(test)},
            "unseen_test_users": int(unseen), "auc_table": table, "probe_table": probe_table, "runs": runs,
            "probes": probes, "pretraining": pretraining, "seconds": timings,
        }, indent=1, default=float))


if __name__ == "__main__":
    main()
