"""JSON responses and the error format shared by every route.

Every error body is ``{"error": "<one line naming what is wrong>"}``; input-validation
errors add ``"problems": [{"row"|"line", "field", "message"}, ...]``. Bodies are
serialised with orjson straight to bytes (no pydantic on the hot path).
"""

from __future__ import annotations

import orjson
from starlette.responses import Response

from .validation import InputValidationError

__all__ = [
    "JSON_OPTIONS",
    "ApiError",
    "error_response",
    "json_response",
    "prediction_records",
    "validation_error_response",
]

JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


class ApiError(Exception):
    """A client error with an HTTP status; rendered as ``{"error": message}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def json_response(content: object, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(content, option=JSON_OPTIONS), status_code=status, headers=headers,
                    media_type="application/json")


def error_response(status: int, message: str, **extra: object) -> Response:
    return json_response({"error": message, **extra}, status)


def validation_error_response(exc: InputValidationError, status: int = 422, prefix: str = "") -> Response:
    problems = [p.as_dict() for p in exc.problems]
    return error_response(status, prefix + str(exc), problems=problems, problem_count=exc.total)


def prediction_records(probabilities, labels, classes: tuple[str, ...]) -> list[dict]:
    """Per row ``{"price_range": k, "label": classes[k], "probabilities": {class: p}}``.

    Probabilities stay NumPy float32 scalars so orjson writes their shortest text.
    """
    return [{"price_range": k, "label": classes[k], "probabilities": dict(zip(classes, p))}
            for k, p in zip(labels.tolist(), probabilities)]
