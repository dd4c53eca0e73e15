"""SavedModel export in the TF Serving layout."""

from tfzoo.export.saved_model import ServingModule, export_saved_model, next_version, write_atomically

__all__ = ["ServingModule", "export_saved_model", "next_version", "write_atomically"]
