"""Named-feature prediction routes: ``POST /predict`` and ``POST /predict/csv``.

``/predict`` takes one JSON object of named features (answered with one object) or a
list of them (answered with a list, at most ``max_rows`` rows), each answer row
``{"price_range": k, "label": "<class>", "probabilities": {"<class>": p, ...}}``.

``/predict/csv`` takes a CSV (multipart upload, field ``file``, or a ``text/csv`` body;
see :mod:`kerasnn.serve.csvio` for the format) and answers a CSV: the features, then
``price_range``, ``label`` and one ``prob_<class>`` column per class. If the ``Accept``
header names ``application/json`` and not ``text/csv``, it answers the ``/predict`` list
instead.

Errors: 400 malformed JSON/multipart; 413 too many rows or too large a body; 415 wrong
content type; 422 ``{"error", "problems": [{"row" | "line", "field", "message"}],
"problem_count"}`` for values that break the schema.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.responses import Response

from .csvio import TooManyRows, decode_csv_bytes
from .middleware import BodyTooLarge
from .responses import PredictionJson, error_response, validation_error_response
from .schemas import ErrorBody, OpenApiExtras, PredictionOut, ValidationErrorBody, feature_row_model
from .service import Service
from .validation import InputValidationError, Problem

__all__ = ["build_router", "wants_json"]

_JSON = "application/json"
_CSV_TYPES = ("text/csv", "application/csv", "text/plain")


def wants_json(accept: str) -> bool:
    """JSON if ``Accept`` names ``application/json`` and not ``text/csv`` (CSV is the default)."""
    accept = accept.lower()
    return "application/json" in accept and "text/csv" not in accept


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def build_router(svc: Service, extras: OpenApiExtras, fast_routes: dict | None = None) -> APIRouter:
    """The prediction routes bound to ``svc``; ``POST /predict`` also goes into ``fast_routes``
    (see :mod:`kerasnn.serve.middleware`)."""
    router = APIRouter(tags=["Prediction"])
    predictor, parser, codec, metrics = svc.predictor, svc.rows, svc.csv, svc.metrics
    render = PredictionJson(svc.schema.classes)
    max_rows = svc.settings.max_rows
    row_ref = extras.ref(feature_row_model(svc.schema))
    errors = {
        400: {"model": ErrorBody, "description": "Malformed body."},
        413: {"model": ErrorBody, "description": f"More than {max_rows} rows or too large a body."},
        415: {"model": ErrorBody, "description": "Unsupported content type."},
        422: {"model": ValidationErrorBody, "description": "Values that break the model's schema."},
    }

    async def predict(request: Request) -> Response:
        media = _media_type(request)
        if media and media != _JSON and not media.endswith("+json"):
            return error_response(415, f"expected Content-Type application/json, got {media!r}")
        body = await request.body()
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return error_response(400, f"malformed JSON: {exc}")
        single = isinstance(doc, dict)
        rows = [doc] if single else doc
        if not isinstance(rows, list):
            return error_response(422, "expected a JSON object of named features or a list of them",
                                  problems=[], problem_count=1)
        if not rows:
            return error_response(422, "empty list: send at least one row", problems=[], problem_count=1)
        if len(rows) > max_rows:
            return error_response(413, f"at most {max_rows} rows per request, got {len(rows)}")
        try:
            x = parser.rows_to_array(rows)
        except InputValidationError as exc:
            return validation_error_response(exc)
        pred = predictor.predict(x, checked=True)
        metrics.observe_predictions("predict", pred.labels)
        body = render.one(pred.probabilities, pred.labels) if single else render.many(pred.probabilities, pred.labels)
        return Response(body, media_type=_JSON)

    if fast_routes is not None:
        fast_routes[("POST", "/predict")] = (predict, "/predict")
    router.add_api_route(
        "/predict", predict, methods=["POST"], response_model=PredictionOut | list[PredictionOut],
        responses=errors, summary="Predict from named features",
        openapi_extra=extras.body(
            {"oneOf": [row_ref, {"type": "array", "items": row_ref, "minItems": 1, "maxItems": max_rows}]},
            description="One object of named features, or a list of them."),
    )

    async def predict_csv(request: Request) -> Response:
        media = _media_type(request)
        try:
            if media == "multipart/form-data":
                data = await _uploaded_file(request)
                if isinstance(data, Response):
                    return data
            elif media in _CSV_TYPES:
                data = await request.body()
            else:
                return error_response(415, f"send the CSV as multipart/form-data (field 'file') or text/csv, "
                                           f"not {media or 'no Content-Type'!r}")
            table = codec.parse(decode_csv_bytes(data), max_rows)
        except TooManyRows as exc:
            return error_response(413, str(exc))
        except InputValidationError as exc:
            return validation_error_response(exc)
        pred = predictor.predict(table.x, checked=True)
        metrics.observe_predictions("predict_csv", pred.labels)
        if wants_json(request.headers.get("accept", "")):
            return Response(render.many(pred.probabilities, pred.labels), media_type=_JSON)
        return Response(codec.render(table.cells, pred.probabilities, pred.labels),
                        media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="predictions.csv"'})

    csv_schema = {"type": "string", "description": "CSV text, header line first."}
    multipart_schema = {"type": "object", "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}}}
    extra = extras.body(csv_schema, media_types=("text/csv",),
                        description="A CSV with the model's feature columns (price_range ignored).")
    extra["requestBody"]["content"]["multipart/form-data"] = {"schema": multipart_schema}
    router.add_api_route(
        "/predict/csv", predict_csv, methods=["POST"], summary="Predict a CSV of phones",
        response_class=Response, openapi_extra=extra,
        responses={200: {"description": "The rows with predictions (CSV; JSON if Accept asks for it).",
                         "content": {"text/csv": {"schema": {"type": "string"}},
                                     _JSON: {"schema": {"type": "array",
                                                        "items": extras.ref(PredictionOut)}}}},
                   **errors},
    )
    return router


async def _uploaded_file(request: Request) -> bytes | Response:
    try:
        form = await request.form(max_files=1, max_fields=16)
    except BodyTooLarge:
        raise
    except Exception as exc:  # noqa: BLE001 - python-multipart / starlette parse errors
        detail = getattr(exc, "detail", None) or getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return error_response(400, f"malformed multipart body: {detail}")
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            given = ", ".join(form.keys()) or "none"
            raise InputValidationError([Problem(None, "file", f"multipart body needs a 'file' field with the CSV "
                                                               f"(fields given: {given})")])
        return await upload.read()
    finally:
        await form.close()
