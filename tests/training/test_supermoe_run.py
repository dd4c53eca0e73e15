import json

import tensorflow as tf

from tfzoo import cli
from tfzoo.data.behaviour_sequences import make_behaviour_sequences
from tfzoo.models.supermoe import MaskedChannelPretrainer


def test_cli_trains_from_a_pretrained_encoder_and_exports_both_signatures(tmp_path, capsys):
    # The CLI fine-tunes; pre-training (here one step) writes the encoder checkpoint it starts from.
    encoder = {"units": 8, "num_experts": 2, "num_heads": 1, "key_dim": 8, "ffn_units": 8}
    data, sizes = make_behaviour_sequences(300, seed=0)
    pretrainer = MaskedChannelPretrainer(
        encoder={**encoder, "category_channels": sizes.category_channels, "id_channels": sizes.id_channels,
                 "dense_channels": sizes.dense_channels}, masked_channels=["item"], num_sampled=8)
    pretrainer.compile(optimizer="adam")
    columns = {k: data.features[k][:64] for k in ("item", "genres", "rating", "title", "interval")}
    pretrainer.fit(tf.data.Dataset.from_tensor_slices(columns).batch(64), epochs=1, verbose=0)
    checkpoint = tf.train.Checkpoint(encoder=pretrainer.encoder).write(str(tmp_path / "pretrained" / "encoder"))

    run_dir = str(tmp_path / "run")
    options = [f"--option=encoder={json.dumps(encoder)}", f"--option=pretrained_encoder={json.dumps(checkpoint)}"]
    assert cli.main(["train", "supermoe", "--dataset", "generated_sequences", "--epochs", "1", "--batch-size", "512",
                     "--out", run_dir, *options]) == 0
    assert "supermoe (test)" in capsys.readouterr().out
    assert cli.main(["export", "--run", run_dir, "--to", str(tmp_path / "savedmodels")]) == 0
    loaded = tf.saved_model.load(str(tmp_path / "savedmodels" / "supermoe_generated_sequences" / "1"))
    assert set(loaded.signatures) == {"serving_default", "user_embedding"}
    outputs = loaded.signatures["user_embedding"](**{k: tf.constant(v[:3]) for k, v in columns.items()})
    assert outputs["user_embedding"].shape == (3, 8)
