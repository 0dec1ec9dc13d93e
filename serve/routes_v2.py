"""Open Inference Protocol (KServe v2) REST routes.

``GET /v2/health/live``, ``/v2/health/ready``, ``/v2`` (server metadata),
``/v2/models/{m}[/versions/{v}]`` (model metadata), ``.../ready``, ``.../config``
(Triton's model-configuration extension, JSON) and
``POST /v2/models/{m}[/versions/{v}]/infer``. An unknown model or version is 404; a bad
request 400 (413 past the row or body limit), always ``{"error": "..."}`` naming the
tensor and what is wrong. Decoding and encoding live in :mod:`kerasnn.serve.v2`.
"""

from __future__ import annotations

import zlib

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from .middleware import BodyTooLarge
from .responses import error_response
from .schemas import (
    ErrorBody,
    InferRequestIn,
    InferResponseOut,
    LiveOut,
    ModelMetadataOut,
    ModelReadyOut,
    OpenApiExtras,
    ReadyOut,
    ServerMetadataOut,
)
from .service import Service
from .triton import model_config
from .v2 import OUTPUT_LABEL, V2Error, decode_infer, encode_infer
from .validation import InputValidationError

__all__ = ["EXTENSIONS", "PLATFORM", "build_router"]

PLATFORM = "onnx_onnxv1"
EXTENSIONS = ["binary_tensor_data", "model_configuration"]
_JSON = "application/json"


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    wbits = {"gzip": 31, "deflate": 15}.get(encoding)
    if wbits is None:
        raise V2Error(f"unsupported Content-Encoding {encoding!r} (use gzip, deflate or none)", status=415)
    try:
        inflater = zlib.decompressobj(wbits)
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise V2Error(f"body is not valid {encoding} data: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise BodyTooLarge(limit)
    return out


def build_router(svc: Service, extras: OpenApiExtras, fast_routes: dict | None = None) -> APIRouter:
    """The v2 routes bound to ``svc``; the infer routes of the served model also go into ``fast_routes``
    (see :mod:`kerasnn.serve.middleware`)."""
    router = APIRouter(tags=["Open Inference Protocol v2"])
    schema = svc.schema
    name, version = svc.model_name, svc.model_version
    output_names = (schema.output_name, OUTPUT_LABEL)
    n_features, n_classes = schema.n_features, schema.n_classes
    predictor, metrics = svc.predictor, svc.metrics
    max_rows, max_body = svc.settings.max_rows, svc.settings.max_body_bytes

    live_body = orjson.dumps({"live": True})
    ready_body = orjson.dumps({"ready": True})
    model_ready_body = orjson.dumps({"name": name, "ready": True})
    server_body = orjson.dumps({"name": "kerasnn", "version": _kerasnn_version(), "extensions": EXTENSIONS})
    metadata_body = orjson.dumps({
        "name": name,
        "versions": [version],
        "platform": PLATFORM,
        "inputs": [{"name": schema.input_name, "datatype": "FP32", "shape": [-1, n_features]}],
        "outputs": [{"name": schema.output_name, "datatype": "FP32", "shape": [-1, n_classes]},
                    {"name": OUTPUT_LABEL, "datatype": "INT64", "shape": [-1]}],
    })
    config_body = orjson.dumps(model_config(schema, name, max_batch_size=max_rows))
    not_found = {404: {"model": ErrorBody, "description": "Unknown model or version."}}

    def unknown(model_name: str, model_version: str | None) -> Response | None:
        if model_name != name:
            return error_response(404, f"unknown model {model_name!r}; this server serves {name!r}")
        if model_version is not None and model_version != version:
            return error_response(404, f"model {name!r} has no version {model_version!r} (versions: {version})")
        return None

    @router.get("/v2/health/live", response_model=LiveOut, summary="Server liveness")
    async def health_live() -> Response:
        return Response(live_body, media_type=_JSON)

    @router.get("/v2/health/ready", response_model=ReadyOut, summary="Server readiness")
    async def health_ready() -> Response:
        return Response(ready_body, media_type=_JSON)

    @router.get("/v2", response_model=ServerMetadataOut, summary="Server metadata")
    async def server_metadata() -> Response:
        return Response(server_body, media_type=_JSON)

    async def _model_metadata(request: Request, model_name: str, model_version: str | None) -> Response:
        return unknown(model_name, model_version) or Response(metadata_body, media_type=_JSON)

    async def _model_ready(request: Request, model_name: str, model_version: str | None) -> Response:
        return unknown(model_name, model_version) or Response(model_ready_body, media_type=_JSON)

    async def _model_config(request: Request, model_name: str, model_version: str | None) -> Response:
        return unknown(model_name, model_version) or Response(config_body, media_type=_JSON)

    for suffix, handler, model, summary in (
        ("", _model_metadata, ModelMetadataOut, "Model metadata"),
        ("/ready", _model_ready, ModelReadyOut, "Model readiness"),
        ("/config", _model_config, None, "Model configuration (Triton JSON)"),
    ):
        plain, versioned = _endpoints(handler)
        router.add_api_route("/v2/models/{model_name}" + suffix, plain, methods=["GET"], response_model=model,
                             responses=not_found, summary=summary)
        router.add_api_route("/v2/models/{model_name}/versions/{model_version}" + suffix, versioned,
                             methods=["GET"], response_model=model, responses=not_found, summary=summary)

    async def _infer(request: Request, model_name: str, model_version: str | None) -> Response:
        missing = unknown(model_name, model_version)
        if missing is not None:
            return missing
        body = await request.body()
        headers = request.headers
        try:
            encoding = headers.get("content-encoding")
            if encoding:
                body = _decompress(body, encoding, max_body)
            raw_len = headers.get("inference-header-content-length")
            header_length = None
            if raw_len is not None:
                try:
                    header_length = int(raw_len)
                except ValueError:
                    raise V2Error(f"Inference-Header-Content-Length must be an integer, got {raw_len!r}") from None
            call = decode_infer(body, header_length, input_name=schema.input_name, n_features=n_features,
                                output_names=output_names, max_rows=max_rows)
            pred = predictor.predict(call.x)
        except V2Error as exc:
            return error_response(exc.status, str(exc))
        except InputValidationError as exc:
            return error_response(400, f"input {schema.input_name!r}: {exc}")
        metrics.observe_predictions("v2", pred.labels)
        out, head_len = encode_infer(call, {schema.output_name: pred.probabilities, OUTPUT_LABEL: pred.labels},
                                     model_name=name, model_version=version)
        if head_len is None:
            return Response(out, media_type=_JSON)
        return Response(out, media_type="application/octet-stream",
                        headers={"Inference-Header-Content-Length": str(head_len)})

    infer_doc = {
        "response_model": InferResponseOut,
        "responses": {400: {"model": ErrorBody, "description": "Invalid request (names the tensor)."},
                   413: {"model": ErrorBody, "description": "Too many rows or too large a body."},
                   **not_found},
        "openapi_extra": extras.body(InferRequestIn, description=(
            "JSON inference request. With the binary tensor data extension the JSON header is followed "
            "by raw little-endian tensors and its length is given in Inference-Header-Content-Length.")),
        "summary": "Inference",
    }
    plain, versioned = _endpoints(_infer)
    router.add_api_route("/v2/models/{model_name}/infer", plain, methods=["POST"], **infer_doc)
    router.add_api_route("/v2/models/{model_name}/versions/{model_version}/infer", versioned, methods=["POST"],
                         **infer_doc)
    if fast_routes is not None:

        async def fast_infer(request: Request) -> Response:
            return await _infer(request, name, None)

        async def fast_infer_versioned(request: Request) -> Response:
            return await _infer(request, name, version)

        fast_routes[("POST", f"/v2/models/{name}/infer")] = (fast_infer, "/v2/models/{model_name}/infer")
        fast_routes[("POST", f"/v2/models/{name}/versions/{version}/infer")] = (
            fast_infer_versioned, "/v2/models/{model_name}/versions/{model_version}/infer")
    return router


def _endpoints(handler):
    """Two FastAPI endpoints for ``handler(request, model_name, model_version)``: without and with
    the ``/versions/{model_version}`` path segment (so neither grows a query parameter)."""

    async def plain(request: Request, model_name: str) -> Response:
        return await handler(request, model_name, None)

    async def versioned(request: Request, model_name: str, model_version: str) -> Response:
        return await handler(request, model_name, model_version)

    return plain, versioned


def _kerasnn_version() -> str:
    try:
        from importlib.metadata import version

        return version("kerasnn")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return "unknown"

