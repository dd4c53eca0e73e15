"""TF Serving's PredictionService and ModelService on protos, shared by gRPC and REST."""

from __future__ import annotations

from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from tfzoo.serving import inference
from tfzoo.serving.errors import invalid_argument
from tfzoo.serving.manager import ModelManager
from tfzoo.serving.servable import ServableVersion

SIGNATURE_DEF_FIELD = "signature_def"


class ServingCore:
    """Answers the API's requests from the models of a `ModelManager`."""

    def __init__(self, manager: ModelManager):
        self.manager = manager

    def servable(self, spec: model_pb2.ModelSpec) -> ServableVersion:
        version = spec.version.value if spec.HasField("version") else None
        return self.manager.servable(spec.name, version, spec.version_label or None)

    def predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        return inference.predict(self.servable(request.model_spec), request)

    def classify(self, request: classification_pb2.ClassificationRequest) -> classification_pb2.ClassificationResponse:
        return inference.classify(self.servable(request.model_spec), request)

    def regress(self, request: regression_pb2.RegressionRequest) -> regression_pb2.RegressionResponse:
        return inference.regress(self.servable(request.model_spec), request)

    def get_model_metadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        if not request.metadata_field:
            raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != SIGNATURE_DEF_FIELD:
                raise invalid_argument(f"Metadata field {field} is not supported")
        servable = self.servable(request.model_spec)
        signature_defs = get_model_metadata_pb2.SignatureDefMap()
        for name, signature_def in servable.signature_defs.items():
            signature_defs.signature_def[name].CopyFrom(signature_def)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.model
        response.model_spec.version.value = servable.version
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_defs)
        return response

    def get_model_status(
        self, request: get_model_status_pb2.GetModelStatusRequest
    ) -> get_model_status_pb2.GetModelStatusResponse:
        spec = request.model_spec
        version = spec.version.value if spec.HasField("version") else None
        response = get_model_status_pb2.GetModelStatusResponse()
        for status in self.manager.version_statuses(spec.name, version, spec.version_label or None):
            entry = response.model_version_status.add(version=status.version, state=status.state)
            if status.error is not None:
                entry.status.error_code = status.error.code.value[0]
                entry.status.error_message = status.error.message
            else:
                entry.status.error_code = error_codes_pb2.OK
        return response

    def reload_config(
        self, request: model_management_pb2.ReloadConfigRequest
    ) -> model_management_pb2.ReloadConfigResponse:
        self.manager.reload_config(request.config)
        response = model_management_pb2.ReloadConfigResponse()
        response.status.error_code = error_codes_pb2.OK
        return response
