"""`tensorflow.serving.PredictionService` and `ModelService` over grpcio."""

from __future__ import annotations

import functools
import logging

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from tfzoo.serving.errors import ServingError
from tfzoo.serving.service import ServingCore

logger = logging.getLogger("tfzoo.serving")


def _rpc(method):
    """Runs an RPC body; errors become gRPC statuses, never a dead worker thread."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except ServingError as error:
            context.abort(error.code, error.message)
        except Exception as error:
            logger.exception("%s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"{method.__name__}: {type(error).__name__}: {error}")

    return wrapper


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, core: ServingCore):
        self.core = core

    @_rpc
    def Predict(self, request, context):
        return self.core.predict(request)

    @_rpc
    def Classify(self, request, context):
        return self.core.classify(request)

    @_rpc
    def Regress(self, request, context):
        return self.core.regress(request)

    @_rpc
    def GetModelMetadata(self, request, context):
        return self.core.get_model_metadata(request)

    @_rpc
    def MultiInference(self, request, context):
        raise ServingError(grpc.StatusCode.UNIMPLEMENTED, "MultiInference is not implemented by tfzoo serve.")


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core: ServingCore):
        self.core = core

    @_rpc
    def GetModelStatus(self, request, context):
        return self.core.get_model_status(request)

    @_rpc
    def HandleReloadConfigRequest(self, request, context):
        return self.core.reload_config(request)


def add_services(server: grpc.Server, core: ServingCore) -> None:
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(core), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(core), server)
