"""TF Serving's gRPC and REST APIs over SavedModels in the TF Serving layout, and a client.

`ModelServer` serves `<base>/<model>/<version>/` directories (and `models.config`) the way
TF Serving does: Predict, Classify, Regress, GetModelMetadata, GetModelStatus, version
policies and labels, hot reload, warm-up, optional batching and TLS. `Client` calls it,
or the TF Serving binary, over gRPC.

Names load with the module that defines them: `from tfzoo.serving import Client` imports
the client (gRPC, NumPy and the TF Serving protos) and not the server.
"""

from tfzoo.lazy_names import lazy_attributes

_EXPORTS = {
    "BatchingOptions": "batching",
    "read_batching_parameters": "batching",
    "Client": "client",
    "ModelMetadata": "client",
    "Prediction": "client",
    "SignatureMetadata": "client",
    "VersionState": "client",
    "example_inputs": "client",
    "ServingError": "errors",
    "ModelServer": "server",
    "ServerOptions": "server",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)
