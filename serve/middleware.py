"""One pure-ASGI middleware: request-body cap and request metrics.

- A declared ``Content-Length`` above the cap is answered ``413 {"error": ...}`` before
  the app sees the request; a body that grows past the cap while streaming makes
  ``receive`` raise :class:`BodyTooLarge`, which the app's exception handler (or this
  middleware, if the response has not started) answers with 413.
- Every HTTP request is counted and timed in :class:`~kerasnn.serve.metrics.ServiceMetrics`
  under its route template.

Pure ASGI (not ``BaseHTTPMiddleware``) because this runs on every request: it adds a
few microseconds, not a task and a queue.
"""

from __future__ import annotations

import time

import orjson

from .metrics import ServiceMetrics

__all__ = ["BodyTooLarge", "ServiceMiddleware"]


class BodyTooLarge(Exception):
    """The request body is larger than the configured cap."""

    def __init__(self, limit: int):
        super().__init__(f"request body larger than the {limit} byte limit")
        self.limit = limit


def _error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})


class ServiceMiddleware:
    """Body cap + metrics around an ASGI app (see the module docstring)."""

    def __init__(self, app, *, metrics: ServiceMetrics, max_body_bytes: int):
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes

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

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:
            if started:
                raise
            status = 413
            await _send_error(send, 413, str(exc))
        finally:
            route = scope.get("route")
            self.metrics.observe_request(getattr(route, "path", None) or "<unmatched>", scope["method"], status,
                                         time.perf_counter() - start)


async def _send_error(send, status: int, message: str) -> None:
    body = _error_body(message)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
