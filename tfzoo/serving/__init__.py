"""TF Serving's gRPC and REST APIs over SavedModels in the TF Serving layout, and a client.

`ModelServer` serves `<base>/<model>/<version>/` directories (and `models.config`) the way
TF Serving does: Predict, Classify, Regress, GetModelMetadata, GetModelStatus, version
policies and labels, hot reload, warm-up, optional batching and TLS. `Client` calls it,
or the TF Serving binary, over gRPC.
"""

from tfzoo.serving.batching import BatchingOptions, read_batching_parameters
from tfzoo.serving.client import Client, ModelMetadata, Prediction, SignatureMetadata, VersionState, example_inputs
from tfzoo.serving.errors import ServingError
from tfzoo.serving.server import ModelServer, ServerOptions

__all__ = [
    "BatchingOptions",
    "Client",
    "ModelMetadata",
    "ModelServer",
    "Prediction",
    "ServerOptions",
    "ServingError",
    "SignatureMetadata",
    "VersionState",
    "example_inputs",
    "read_batching_parameters",
]
