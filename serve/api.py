"""The FastAPI application: :func:`create_app` (and :func:`app_from_env` for uvicorn workers).

Routes (see each router's docstring): the Open Inference Protocol v2 under ``/v2``
(:mod:`.routes_v2`), ``/predict`` and ``/predict/csv`` (:mod:`.routes_predict`),
``/metrics``, ``/model`` and ``/`` (:mod:`.routes_ops`), OpenAPI docs at ``/docs``, and
the Gradio UI at ``/ui`` when ``settings.ui`` is true.

Every error body is ``{"error": "..."}``. Requests larger than ``max_body_bytes`` get
413. Client input never causes a 500: the handlers below turn framework errors
(unknown route 404, wrong method 405, bad path parameter 422) into the same format.

Loading the model happens in :func:`create_app`, so a bad model refuses to start with
:class:`kerasnn.errors.ModelFileError` before any socket is opened.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import routes_ops, routes_predict, routes_v2
from .middleware import BodyTooLarge, ServiceMiddleware
from .responses import error_response
from .schemas import OpenApiExtras
from .service import Service, ServiceSettings

__all__ = ["app_from_env", "create_app"]

log = logging.getLogger("kerasnn.serve")


def create_app(settings: ServiceSettings | None = None, **overrides) -> FastAPI:
    """A ready app serving ``settings.model_path`` (keyword overrides replace settings fields)."""
    settings = settings or ServiceSettings()
    if overrides:
        settings = ServiceSettings(**{**settings.__dict__, **overrides})
    svc = Service(settings)
    app = FastAPI(
        title="kerasnn phone-price service",
        version=svc.model_version,
        description=("Predicts a phone's price range (one of "
                     + ", ".join(svc.schema.classes)
                     + ") from its 20 specifications with an ONNX model on onnxruntime. "
                       "Open Inference Protocol v2 under /v2, named features at /predict, CSV at /predict/csv."),
    )
    app.state.service = svc
    extras = OpenApiExtras()
    fast_routes: dict = {}
    app.include_router(routes_predict.build_router(svc, extras, fast_routes))
    app.include_router(routes_v2.build_router(svc, extras, fast_routes))
    app.include_router(routes_ops.build_router(svc))
    _hot_routes_first(app)
    extras.install(app)
    _install_error_handlers(app)
    app.add_middleware(ServiceMiddleware, metrics=svc.metrics, max_body_bytes=settings.max_body_bytes,
                       fast_routes=fast_routes)
    if settings.ui:
        from .ui import mount_ui

        mount_ui(app, svc.predictor)
    return app


def _hot_routes_first(app: FastAPI) -> None:
    """Routes are matched in order: put the inference routes before docs and metadata."""
    hot = ("/predict", "/v2/models/{model_name}/infer")
    app.router.routes.sort(key=lambda r: 0 if getattr(r, "path", None) in hot else 1)


def app_from_env() -> FastAPI:
    """:func:`create_app` with settings from ``KERASNN_SERVE_*`` variables (a uvicorn factory)."""
    return create_app(ServiceSettings.from_env())


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            message = f"not found: {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} not allowed on {request.url.path}"
        response = error_response(exc.status_code, message)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def params_error(request: Request, exc: RequestValidationError):
        parts = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{loc}: {err.get('msg', 'invalid')}")
        return error_response(422, "; ".join(parts) or "invalid request")

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge):
        return error_response(413, str(exc))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(500, "internal server error")
