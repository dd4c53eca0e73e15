"""SavedModel export in the TF Serving layout."""

from tfzoo.export.fresh_process import call_in_fresh_process
from tfzoo.export.registry import EXPORTERS, export_model
from tfzoo.export.saved_model import ServingModule, export_saved_model, next_version, write_atomically

__all__ = ["EXPORTERS", "call_in_fresh_process", "ServingModule", "export_model", "export_saved_model", "next_version", "write_atomically"]
