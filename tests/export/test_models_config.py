"""`models.config`: created and updated by exports, other entries and hand-set policies kept."""

from __future__ import annotations

import threading

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tfzoo.export import add_to_models_config, read_models_config, write_models_config


def test_add_creates_then_updates_keeping_other_entries_and_policies(tmp_path):
    path = add_to_models_config(tmp_path, "mmoe_census")
    config = read_models_config(path)
    (entry,) = config.model_config_list.config
    assert (entry.name, entry.base_path, entry.model_platform) == (
        "mmoe_census",
        str((tmp_path / "mmoe_census").resolve()),
        "tensorflow",
    )
    # A hand-edited policy and label survive later exports of the same model.
    entry.model_version_policy.specific.versions.extend([1, 2])
    entry.version_labels["stable"] = 1
    write_models_config(path, config)
    add_to_models_config(tmp_path, "ple_census")
    add_to_models_config(tmp_path, "mmoe_census", base_path="/models/mmoe_census")
    config = read_models_config(path)
    assert [c.name for c in config.model_config_list.config] == ["mmoe_census", "ple_census"]
    mmoe = config.model_config_list.config[0]
    assert list(mmoe.model_version_policy.specific.versions) == [1, 2] and dict(mmoe.version_labels) == {"stable": 1}
    assert mmoe.base_path == "/models/mmoe_census"
    # The file is what TF Serving's --model_config_file parses.
    assert text_format.Parse(path.read_text(), model_server_config_pb2.ModelServerConfig()) == config
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".models.config.lock")) == [
        "models.config"
    ]


def test_concurrent_exports_lose_no_entry(tmp_path):
    threads = [threading.Thread(target=add_to_models_config, args=(tmp_path, f"model_{i}")) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    names = {c.name for c in read_models_config(tmp_path / "models.config").model_config_list.config}
    assert names == {f"model_{i}" for i in range(12)}


def test_bad_config_files_name_the_file_and_place(tmp_path):
    path = tmp_path / "models.config"
    path.write_text('model_config_list {\n  config { name: "a" base_path: "/x" }\n  config { nme: "b" }\n}\n')
    with pytest.raises(ValueError, match=r"models.config.*3:12"):
        read_models_config(path)
    path.write_text('model_config_list { config { name: "a" base_path: "/x" } config { name: "a" base_path: "/y" } }')
    with pytest.raises(ValueError, match=r"models.config.*unique.*\['a'\]"):
        read_models_config(path)
    with pytest.raises(ValueError, match="models.config"):
        add_to_models_config(tmp_path, "c")
