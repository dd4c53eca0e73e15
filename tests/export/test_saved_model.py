import numpy as np
import pytest
import tensorflow as tf

from tfzoo.data import make_dataset
from tfzoo.export import call_in_fresh_process, export_saved_model, next_version
from tfzoo.models import PLE


def test_export_answers_raw_features_in_a_process_without_tfzoo(census_small, tmp_path, monkeypatch):
    data, spec = census_small
    monkeypatch.chdir(tmp_path)  # a relative export base, as `make demo` and the CLI use
    model = PLE(
        feature_spec=spec,
        embedding_dim=2,
        num_task_experts=1,
        num_shared_experts=1,
        expert_units=(4,),
        tower_units=(4,),
    )
    rows = np.arange(7)
    expected = model(next(iter(make_dataset(data.take(rows), spec, batch_size=7)))[0])
    path = export_saved_model(model, spec, "savedmodels", "ple_census")
    assert path.resolve() == tmp_path / "savedmodels" / "ple_census" / "1"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp")]

    raw = {name: data.features[name][rows] for name in spec.feature_names}
    raw["age"] = raw["age"].copy()
    raw["age"][0] = np.nan  # a missing value is answered, not an error
    # The child process fails if loading the export pulls tfzoo in.
    served = call_in_fresh_process(path, raw)
    assert set(served) == {"income", "never_married"}
    # Row 0 differs (age made missing); the other rows match the in-process model exactly.
    for task in served:
        np.testing.assert_allclose(served[task][1:], expected[task].numpy()[1:], atol=1e-6)
        assert 0.0 < served[task][0] < 1.0


def test_versions_are_numbered_and_immutable(synthetic_small, tmp_path):
    data, spec = synthetic_small
    model = PLE(
        feature_spec=spec,
        embedding_dim=2,
        num_task_experts=1,
        num_shared_experts=0,
        expert_units=(4,),
        tower_units=(2,),
    )
    model(next(iter(make_dataset(data, spec, batch_size=4)))[0])
    assert next_version(tmp_path / "m") == 1
    export_saved_model(model, spec, tmp_path, "m")
    export_saved_model(model, spec, tmp_path, "m", version=7)
    assert next_version(tmp_path / "m") == 8
    with pytest.raises(FileExistsError, match="immutable"):
        export_saved_model(model, spec, tmp_path, "m", version=7)
    with pytest.raises(ValueError, match="name='a/b'"):
        export_saved_model(model, spec, tmp_path, "a/b")
    signature = tf.saved_model.load(str(tmp_path / "m" / "7")).signatures["serving_default"]
    assert set(signature.structured_input_signature[1]) == set(spec.feature_names)
