"""Trains SUPER-MoE's MCP pre-training a few steps under ParameterServerStrategy (run as a script).

A cluster of 1 worker and 2 parameter servers on 127.0.0.1 (in-process servers, as in
TensorFlow's parameter-server tutorial); the variable partitioner splits every table of
at least `min_shard_bytes` over both servers. Prints one JSON line describing the shards.
"""

import json
import os
import socket
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfzoo.data.behaviour_sequences import channel_columns, make_behaviour_sequences  # noqa: E402
from tfzoo.models.supermoe import MaskedChannelPretrainer  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def in_process_cluster(num_workers: int, num_ps: int):
    cluster = tf.train.ClusterSpec({
        "worker": [f"127.0.0.1:{free_port()}" for _ in range(num_workers)],
        "ps": [f"127.0.0.1:{free_port()}" for _ in range(num_ps)],
    })
    for index in range(num_workers):
        tf.distribute.Server(cluster, job_name="worker", task_index=index, protocol="grpc", start=True)
    for index in range(num_ps):
        tf.distribute.Server(cluster, job_name="ps", task_index=index, protocol="grpc", start=True)
    return tf.distribute.cluster_resolver.SimpleClusterResolver(cluster, rpc_layer="grpc")


def main() -> None:
    data, sizes = make_behaviour_sequences(60, num_items=400, length=8, seed=0)
    columns = channel_columns(data)
    partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(min_shard_bytes=4096, max_shards=2)
    strategy = tf.distribute.ParameterServerStrategy(in_process_cluster(1, 2), variable_partitioner=partitioner)
    encoder = dict(units=16, category_channels=sizes.category_channels, id_channels=sizes.id_channels,
                   dense_channels=sizes.dense_channels, num_heads=2, key_dim=8, ffn_units=16, num_experts=2)
    with strategy.scope():
        model = MaskedChannelPretrainer(encoder=encoder, masked_channels=["item", "rating"], num_sampled=16)
        model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))

    def dataset_fn(context):
        return tf.data.Dataset.from_tensor_slices(columns).repeat().batch(32)

    history = model.fit(tf.keras.utils.experimental.DatasetCreator(dataset_fn), epochs=2, steps_per_epoch=4, verbose=0)
    table = model.encoder.projection.tables["item"]
    output_table = model.output_tables["item"]
    print(json.dumps({
        "item_table": type(table).__name__,
        "item_shards": [v.device for v in getattr(table, "variables", [table])],
        "item_shard_rows": [int(v.shape[0]) for v in getattr(table, "variables", [table])],
        "output_shards": [v.device for v in getattr(output_table, "variables", [output_table])],
        "loss": [float(x) for x in history.history["loss"]],
        "rows": int(np.asarray(tf.convert_to_tensor(table)).shape[0]),
    }))
    sys.stdout.flush()
    os._exit(0)  # in-process servers never stop on their own


if __name__ == "__main__":
    main()
