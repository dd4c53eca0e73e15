"""SavedModel export in the TF Serving layout.

Names load with the module that defines them: the warm-up and models.config helpers
that the server and client use import no model code.
"""

from tfzoo.lazy_names import lazy_attributes

_EXPORTS = {
    "call_in_fresh_process": "fresh_process",
    "check_in_fresh_process": "fresh_process",
    "MODELS_CONFIG_FILE": "models_config",
    "add_to_models_config": "models_config",
    "read_models_config": "models_config",
    "write_models_config": "models_config",
    "ServingModule": "saved_model",
    "export_saved_model": "saved_model",
    "next_version": "saved_model",
    "save_version": "saved_model",
    "write_atomically": "saved_model",
    "WARMUP_FILE": "warmup",
    "example_rows": "warmup",
    "predict_log": "warmup",
    "read_warmup_requests": "warmup",
    "signature_inputs": "warmup",
    "synthesize_inputs": "signature_values",
    "warmup_logs": "warmup",
    "write_warmup_requests": "warmup",
    "export_supermoe": "supermoe",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)
