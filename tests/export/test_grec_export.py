import json
import subprocess
import sys

import numpy as np

from tfzoo.data import make_dataset
from tfzoo.export.grec import export_grec
from tfzoo.models import GRec
from tfzoo.tasks import GRecTask
from tfzoo.training import task_for

# Runs in a fresh interpreter that never imports tfzoo: plain TensorFlow must serve it.
LOAD_AND_SERVE = """
import json, sys
import numpy as np
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
raw = dict(np.load(sys.argv[2], allow_pickle=True))
inputs = {k: tf.constant(v.astype(str) if v.dtype == object else v) for k, v in raw.items()}
everything = model.signatures["serving_default"](**inputs)
one_task = model.signatures["eup_cvr"](**{k: v for k, v in inputs.items() if k != "flow"})
shapes = tf.train.load_checkpoint(sys.argv[1] + "/variables/variables").get_variable_to_shape_map()
expert_kernels = [shape for shape in shapes.values() if len(shape) == 3]  # only expert kernels are 3-D
print(json.dumps({
    "all": {k: v.numpy().tolist() for k, v in everything.items()},
    "eup_cvr": one_task["cvr"].numpy().tolist(),
    "signatures": sorted(model.signatures),
    "expert_kernels": expert_kernels,
    "tfzoo_imported": any(name.startswith("tfzoo") for name in sys.modules),
}))
"""


def test_task_sentence_grec_exports_its_extracted_experts_for_plain_tensorflow(synthetic_small, tmp_path):
    data, spec = synthetic_small
    # `tfzoo export` of a GRec run goes through GRecTask, which calls `export_grec`.
    assert isinstance(task_for("grec"), GRecTask) and task_for("grec").model_class is GRec
    model = GRec(
        feature_spec=spec,
        tasks=("ctr", "cvr"),
        token_features={"user": ["cat_0", "num_0"], "item": ["item_vector"]},
        model_dim=8,
        num_heads=2,
        num_experts=32,
        top_k=2,
        expert_units=(8,),
        tower_units=(4,),
    )
    rows = data.take(np.arange(40))
    features = next(iter(make_dataset(rows, spec, batch_size=40, with_labels=False)))
    expected = {k: v.numpy() for k, v in model(features).items()}

    path = export_grec(model, spec, tmp_path, "grec")
    raw = tmp_path / "raw.npz"
    np.savez(raw, **{name: rows.features[name] for name in spec.feature_names})
    result = subprocess.run(
        [sys.executable, "-c", LOAD_AND_SERVE, str(path), str(raw)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    served = json.loads(result.stdout.strip().splitlines()[-1])

    assert not served["tfzoo_imported"]
    for task, values in expected.items():
        np.testing.assert_allclose(served["all"][task], values, atol=1e-5)
    in_eup = rows.features["flow"] == "eup"
    np.testing.assert_allclose(np.asarray(served["eup_cvr"])[in_eup], expected["cvr"][in_eup], atol=1e-5)
    assert {"serving_default", "aal_ctr", "eup_cvr", "nse_ctr"} <= set(served["signatures"])
    # Only the experts the 8 tasks chose (at most 8 * 2 of the 32) are in the SavedModel.
    kept = model.extract().experts.num_experts
    assert kept < 32
    assert served["expert_kernels"] == [[kept, 8, 8]]
