"""GRec under MirroredStrategy: one step on 2 replicas equals one step on one device.

The global batch is a batch B twice over, so each replica sees exactly B: the routing
losses (load balance, z-loss) of each replica then equal those of the whole batch, and
the update matches the single-device one only if the task losses are scaled to the
global batch and the routing losses averaged (not summed) over replicas.
"""

import json
import os
import subprocess
import sys

import numpy as np
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
from tfzoo.models import GRec

routing = sys.argv[1]
data = tfzoo.data.make_multi_scenario_data(64, seed=3)
spec = data.spec.fit(data.features)
doubled = data.take(np.concatenate([np.arange(32), np.arange(32)]))  # B twice: [B; B]
dataset = make_dataset(doubled, spec, batch_size=64)
features = next(iter(dataset))[0]
options = dict(feature_spec=spec, token_features={"user": ["cat_0", "num_0"], "item": ["item_vector"]},
               model_dim=8, num_heads=2, num_experts=4, top_k=2, expert_units=(8,), tower_units=(4,),
               routing=routing, load_balance_weight=0.5, z_loss_weight=0.1)

def one_step(strategy, weights=None):
    with strategy.scope():
        tf.keras.utils.set_random_seed(0)
        model = GRec(**options)
        model.compile(optimizer=tf.keras.optimizers.SGD(0.5))
        model(features)
        if weights is not None:
            for variable, value in zip(model.trainable_variables, weights):
                variable.assign(value)
    start = [v.numpy() for v in model.trainable_variables]
    aux = None
    if weights is None:  # an eager training call updates routing metrics: one device only
        model(features, training=True)
        aux = float(tf.add_n(model.moe.losses))
    history = model.fit(dataset, epochs=1, verbose=0).history
    return start, [v.numpy() for v in model.trainable_variables], history["loss"][0], aux

start, single, single_loss, aux = one_step(tf.distribute.get_strategy())
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
_, replicated, replicated_loss, _ = one_step(mirrored, start)
print(json.dumps({
    "replicas": mirrored.num_replicas_in_sync, "aux": aux,
    "losses": [single_loss, replicated_loss],
    "max_weight_difference": max(float(np.abs(a - b).max()) for a, b in zip(single, replicated)),
    "max_update": max(float(np.abs(a - b).max()) for a, b in zip(single, start)),
}))
"""


@pytest.mark.parametrize("routing", ["task_sentence"])
def test_one_step_on_two_replicas_equals_one_step_on_one_device(routing):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, routing], capture_output=True, text=True, timeout=200, env=env, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["replicas"] == 2
    assert outcome["aux"] > 1e-3  # the routing losses weigh in the update
    np.testing.assert_allclose(outcome["losses"][1], outcome["losses"][0], rtol=1e-5)
    assert outcome["max_update"] > 1e-3
    assert outcome["max_weight_difference"] < 1e-5
