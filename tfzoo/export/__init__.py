"""SavedModel export in the TF Serving layout."""

from tfzoo.export.fresh_process import call_in_fresh_process
from tfzoo.export.models_config import MODELS_CONFIG_FILE, add_to_models_config, read_models_config, write_models_config
from tfzoo.export.registry import EXPORTERS, export_model
from tfzoo.export.saved_model import ServingModule, export_saved_model, next_version, save_version, write_atomically
from tfzoo.export.warmup import (
    WARMUP_FILE,
    example_rows,
    predict_log,
    read_warmup_requests,
    signature_inputs,
    synthesize_inputs,
    warmup_logs,
    write_warmup_requests,
)
from tfzoo.export.supermoe import export_supermoe

__all__ = [
    "EXPORTERS",
    "MODELS_CONFIG_FILE",
    "ServingModule",
    "WARMUP_FILE",
    "add_to_models_config",
    "call_in_fresh_process",
    "example_rows",
    "export_model",
    "export_saved_model",
    "export_supermoe",
    "next_version",
    "predict_log",
    "read_models_config",
    "read_warmup_requests",
    "save_version",
    "signature_inputs",
    "synthesize_inputs",
    "warmup_logs",
    "write_atomically",
    "write_models_config",
    "write_warmup_requests",
]
