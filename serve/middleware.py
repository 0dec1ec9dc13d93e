"""One pure-ASGI middleware: request-body cap, request metrics and fast dispatch of hot routes.

- A declared ``Content-Length`` above the cap is answered ``413 {"error": ...}`` before
  the app sees the request; a body that grows past the cap while streaming makes
  ``receive`` raise :class:`BodyTooLarge`, which the app's exception handler (or this
  middleware, if the response has not started) answers with 413.
- Every HTTP request is counted and timed in :class:`~kerasnn.serve.metrics.ServiceMetrics`
  under its route template.

- ``fast_routes`` maps exact ``(method, path)`` pairs (``POST /predict``,
  ``POST /v2/models/phone_price/infer``, ...) to the same endpoint functions the FastAPI
  routes document, called with a ``Request`` directly: FastAPI's route scan and dependency
  solving cost more than the inference on a single-row request. Anything else goes
  through FastAPI as usual.

Pure ASGI (not ``BaseHTTPMiddleware``) because this runs on every request: it adds a
few microseconds, not a task and a queue.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .metrics import ServiceMetrics

FastRoute = tuple[Callable[[Request], Awaitable[Response]], str]  # endpoint, route label for metrics

__all__ = ["BodyTooLarge", "FastRoute", "ServiceMiddleware"]


class BodyTooLarge(Exception):
    """The request body is larger than the configured cap."""

    def __init__(self, limit: int):
        super().__init__(f"request body larger than the {limit} byte limit")
        self.limit = limit


def _error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})


class ServiceMiddleware:
    """Body cap + metrics around an ASGI app (see the module docstring)."""

    def __init__(self, app, *, metrics: ServiceMetrics, max_body_bytes: int,
                 fast_routes: dict[tuple[str, str], FastRoute] | None = None):
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes
        self.fast_routes = fast_routes or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        started = False
        limit = self.max_body

        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit or declared < 0:
                    why = (f"request body larger than the {limit} byte limit" if declared > limit
                           else "invalid Content-Length header")
                    code = 413 if declared > limit else 400
                    await _send_error(send, code, why)
                    self.metrics.observe_request("<rejected>", scope["method"], code, time.perf_counter() - start)
                    return
                break

        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message):
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
            await send(message)

        fast = self.fast_routes.get((scope["method"], scope["path"]))
        label = fast[1] if fast is not None else None
        try:
            if fast is not None:
                response = await fast[0](Request(scope, limited_receive))
                await response(scope, limited_receive, tracking_send)
            else:
                await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:
            if started:
                raise
            status = 413
            await _send_error(send, 413, str(exc))
        finally:
            if label is None:
                label = getattr(scope.get("route"), "path", None) or "<unmatched>"
            self.metrics.observe_request(label, scope["method"], status, time.perf_counter() - start)


async def _send_error(send, status: int, message: str) -> None:
    body = _error_body(message)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
