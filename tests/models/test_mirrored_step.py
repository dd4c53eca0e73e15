"""One training step of every model family on 2 replicas equals one step on one device.

`ZooModel.train_step` is the zoo's only training step: the models return named loss terms
and the base scales them for `tf.distribute`. Here, in a fresh process with 2 logical CPUs,
each family's step under `MirroredStrategy` must give the weights and the logged losses
of the same step on one device (the AUC-driven task weights of eq. 10 included).

Losses that are batch statistics (the mixtures' load balance) are per replica: for the
rankers and SUPER-MoE each replica gets the same half-batch B of a global batch [B; B],
so that a replica's statistics equal the whole batch's and only the scaling can differ
(GRec's routing losses are on; the sequence encoders have one expert). Multi-worker
training uses the same replica API; its run-level equality with one device is tested in
tests/training/test_distributed.py.
Friend retrieval gets two different halves: its in-batch negatives range over the global
batch (`with_other_replicas`), so its loss is the one-device loss whatever the split.
"""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(480)

SCRIPT = r"""
import json, os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import tfzoo
from tfzoo.data import make_dataset
from tfzoo.data.behaviour_sequences import BEHAVIOUR_TASKS, channel_columns, make_behaviour_sequences
from tfzoo.graph import FEATURES, NODE_ID, USERS, SubgraphSampler
from tfzoo.graph.ops import side_by_side
from tfzoo.models import GRec, SSMTLRetrieval
from tfzoo.models.supermoe import MaskedChannelPretrainer, SuperMoE

MIRRORED = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
DEFAULT = tf.distribute.get_strategy()


def rows(structure, start, stop):
    return tf.nest.map_structure(lambda t: t[start:stop], structure)


def doubled(batch, size):
    # [B; B]: both halves hold the same B rows.
    half = rows(batch, 0, size)
    return tf.nest.map_structure(lambda t: tf.concat([t, t], 0), half), [half, half]


def prime(model, whole):
    # Builds every layer outside the step, without touching metrics (in cross-replica context).
    if isinstance(model, SSMTLRetrieval):
        model.build_objectives(whole)
    elif isinstance(model, MaskedChannelPretrainer):
        model(whole)
        for head in model.heads.values():
            head.build([None, model.encoder.units])
    else:
        model(whole[0][0] if isinstance(whole[0], tuple) else whole[0])


def one_step(strategy, build, whole, halves, start=None):
    with strategy.scope():
        tf.keras.utils.set_random_seed(0)
        model = build()
        model.compile(optimizer=tf.keras.optimizers.SGD(0.5))
        prime(model, whole)
        model.optimizer.build(model.trainable_variables)
        if start is not None:
            for variable, value in zip(model.trainable_variables, start):
                variable.assign(value)
    initial = [v.numpy() for v in model.trainable_variables]
    if strategy is DEFAULT:
        values = whole
    else:
        values = strategy.experimental_distribute_values_from_function(
            lambda context: halves[context.replica_id_in_sync_group]
        )
    # Eagerly: the scaling rules are the same traced or not, and tracing each family's step
    # twice cost 75 of this test's 97 s. The traced step under a strategy is what the runs of
    # tests/training/test_distributed.py take.
    strategy.run(model.train_step, args=(values,))
    logged = {name: float(tracker.result()) for name, tracker in model.loss_trackers.items()}
    if isinstance(model, SuperMoE):
        logged.update({f"lambda_{t}": w for t, w in model.current_task_weights().items()})
    return model, initial, [v.numpy() for v in model.trainable_variables], logged


def compare(build, whole, halves):
    # The one-device step on `whole` against the mirrored one on `halves`.
    _, start, single, single_logs = one_step(DEFAULT, build, whole, halves)
    _, _, replicated, replicated_logs = one_step(MIRRORED, build, whole, halves, start)
    return {
        "logged": [single_logs, replicated_logs],
        "max_update": max(float(np.abs(a - b).max()) for a, b in zip(single, start)),
        "max_weight_difference": max(float(np.abs(a - b).max()) for a, b in zip(single, replicated)),
    }


outcomes = {}

# Ranking (GRec, on MultiTaskModel): task losses over the global count of present labels.
data = tfzoo.data.make_multi_scenario_data(64, seed=3)
spec = data.spec.fit(data.features)
whole, halves = doubled(next(iter(make_dataset(data, spec, batch_size=64))), 32)
grec = dict(feature_spec=spec, token_features={"user": ["cat_0", "num_0"], "item": ["item_vector"]},
            model_dim=8, num_heads=2, num_experts=4, top_k=2, expert_units=(8,), tower_units=(4,),
            routing="task_sentence", load_balance_weight=0.5, z_loss_weight=0.1)
outcomes["grec"] = compare(lambda: GRec(**grec), whole, halves)

# Behaviour sequences: SUPER-MoE fine-tuning, fixed and AUC-driven task weights.
sequences, sizes = make_behaviour_sequences(80, num_items=60, events_per_user=16, length=6, seed=3)
# One expert: the routing losses' scaling is GRec's case above; this one is about the tasks.
encoder = dict(units=16, category_channels=sizes.category_channels, id_channels=sizes.id_channels,
               dense_channels=sizes.dense_channels, num_heads=2, key_dim=8, ffn_units=16, num_experts=1)
take = sequences.take(np.arange(64))
batch = (channel_columns(take), take.labels, take.label_masks)
whole, halves = doubled(tf.nest.map_structure(tf.convert_to_tensor, batch), 32)
outcomes["supermoe"] = compare(lambda: SuperMoE(encoder=encoder, tasks=BEHAVIOUR_TASKS), whole, halves)
validation = sequences.take(np.arange(64, 128))
validation = tf.nest.map_structure(
    tf.convert_to_tensor, (channel_columns(validation), validation.labels, validation.label_masks))
whole_val, halves_val = doubled(validation, 32)
outcomes["supermoe_auc_weights"] = compare(
    lambda: SuperMoE(encoder=encoder, tasks=BEHAVIOUR_TASKS, task_weight_rate=0.5),
    (whole, whole_val), [(h, v) for h, v in zip(halves, halves_val)])

# Behaviour pre-training: the masks are drawn over the global batch, each replica keeps its rows.
features = tf.nest.map_structure(tf.convert_to_tensor, channel_columns(take))
whole = features
halves = [rows(features, 0, 32), rows(features, 32, 64)]
outcomes["pretrainer"] = compare(
    lambda: MaskedChannelPretrainer(encoder=encoder, masked_channels=["item", "rating"], mask_rate=0.3,
                                    num_sampled=8), whole, halves)

# Friend retrieval: two different halves; negatives from the global batch.
graph = tfzoo.data.split_friendships(
    tfzoo.data.make_friend_graph(300, num_communities=6, feature_dim=60, mean_degree=8, seed=0), seed=0)
sampler = SubgraphSampler(graph.train, fanouts=(4, 3), seed=0)
pairs = graph.train.edges[:32]


def joined(first, second):
    nodes = {k: tf.concat([first.node_sets[USERS][k], second.node_sets[USERS][k]], 0) for k in (NODE_ID, FEATURES)}
    return side_by_side([first, second]).replace_features(node_sets={USERS: nodes})


def pair_batch(chunk):
    return {"query": sampler(tf.constant(chunk[:, 0])), "candidate": sampler(tf.constant(chunk[:, 1])),
            "candidate_probability": tf.fill([len(chunk)], 0.01)}


halves = [pair_batch(pairs[:16]), pair_batch(pairs[16:])]
whole = {key: joined(halves[0][key], halves[1][key]) for key in ("query", "candidate")}
whole["candidate_probability"] = tf.concat([h["candidate_probability"] for h in halves], 0)
outcomes["ssmtl"] = compare(
    lambda: SSMTLRetrieval(feature_dim=60, hidden_dim=8, embedding_dim=8, num_heads=2, dropout=0.0, id_buckets=300,
                           mae_weight=1.0, mae_edge_drop=0.0, logq_correction=True, candidate_bias=True),
    whole, halves)
print(json.dumps({"replicas": MIRRORED.num_replicas_in_sync, "outcomes": outcomes}))
"""


@pytest.fixture(scope="module")
def outcomes():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=420, env=env, check=False
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    return report["outcomes"]


@pytest.mark.parametrize("family", ["grec", "supermoe", "supermoe_auc_weights", "pretrainer", "ssmtl"])
def test_one_step_on_two_replicas_equals_one_step_on_one_device(outcomes, family):
    outcome = outcomes[family]
    single, replicated = outcome["logged"]
    assert sorted(single) == sorted(replicated) and len(single) > 1
    for name, value in single.items():
        assert replicated[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    assert outcome["max_update"] > 1e-3  # the step moved the weights
    assert outcome["max_weight_difference"] < 1e-5
    if family == "supermoe_auc_weights":
        assert max(abs(single[f"lambda_{t}"] - 1.0) for t in ("like", "female", "over_34")) > 1e-3  # eq. 10 stepped
