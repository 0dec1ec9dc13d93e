"""Operational routes: ``GET /metrics`` (Prometheus text format), ``GET /model`` (what is served)
and ``GET /`` (an index of the other routes)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from starlette.responses import Response

from .metrics import CONTENT_TYPE_LATEST
from .service import Service

__all__ = ["build_router"]


def build_router(svc: Service) -> APIRouter:
    """The operational routes bound to ``svc``."""
    router = APIRouter(tags=["Operations"])
    info = svc.predictor.info()
    info["name"] = svc.model_name
    info["version"] = svc.model_version
    model_body = orjson.dumps(info)
    index_body = orjson.dumps({
        "name": "kerasnn phone-price service",
        "model": svc.model_name,
        "routes": {"docs": "/docs", "openapi": "/openapi.json", "model": "/model", "metrics": "/metrics",
                   "predict": "/predict", "predict_csv": "/predict/csv",
                   "v2_infer": f"/v2/models/{svc.model_name}/infer", "ui": "/ui" if svc.settings.ui else None},
    })

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response,
                responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                                 "description": "Prometheus text exposition format."}})
    async def metrics() -> Response:
        return Response(svc.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @router.get("/model", summary="The served model: file, sha256, schema and metadata")
    async def model() -> Response:
        return Response(model_body, media_type="application/json")

    @router.get("/", summary="Index of the routes")
    async def index() -> Response:
        return Response(index_body, media_type="application/json")

    return router
