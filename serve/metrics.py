"""Prometheus metrics of the service (``/metrics``, text exposition format).

- ``kerasnn_http_requests_total{route, method, status}``: requests answered;
- ``kerasnn_http_request_duration_seconds{route}``: latency histogram (sub-ms buckets);
- ``kerasnn_rows_predicted_total{endpoint}``: rows scored;
- ``kerasnn_predictions_total{class_name}``: predicted rows per class.

``route`` is the route template (``/v2/models/{model_name}/infer``), never the raw path,
so label cardinality stays bounded; unmatched paths count as ``"<unmatched>"``.

Each :class:`ServiceMetrics` owns a registry (several apps can live in one process).
Under several uvicorn workers, set ``PROMETHEUS_MULTIPROC_DIR`` (``kerasnn serve
--workers N`` does it for you) and ``/metrics`` aggregates all workers.
"""

from __future__ import annotations

import os

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "ServiceMetrics"]

_BUCKETS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics:
    """The service's counters and histogram, and their exposition."""

    def __init__(self, class_names: tuple[str, ...]):
        disable_created_metrics()  # no *_created series: half the exposition, no information
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("kerasnn_http_requests", "HTTP requests answered.",
                                ("route", "method", "status"), registry=self.registry)
        self.latency = Histogram("kerasnn_http_request_duration_seconds", "HTTP request latency.",
                                 ("route",), buckets=_BUCKETS, registry=self.registry)
        self.rows = Counter("kerasnn_rows_predicted", "Rows scored by the model.", ("endpoint",),
                            registry=self.registry)
        self.per_class = Counter("kerasnn_predictions", "Predicted rows per class.", ("class_name",),
                                 registry=self.registry)
        self._class_children = [self.per_class.labels(c) for c in class_names]
        self._rows_children: dict[str, object] = {}
        self._req_children: dict[tuple[str, str, int], object] = {}
        self._lat_children: dict[str, object] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        child = self._req_children.get(key)
        if child is None:
            child = self._req_children[key] = self.requests.labels(route, method, str(status))
        child.inc()
        lat = self._lat_children.get(route)
        if lat is None:
            lat = self._lat_children[route] = self.latency.labels(route)
        lat.observe(seconds)

    def observe_predictions(self, endpoint: str, labels: np.ndarray) -> None:
        child = self._rows_children.get(endpoint)
        if child is None:
            child = self._rows_children[endpoint] = self.rows.labels(endpoint)
        child.inc(len(labels))
        if len(labels) == 1:
            self._class_children[int(labels[0])].inc()
            return
        for child, count in zip(self._class_children, np.bincount(labels, minlength=len(self._class_children))):
            if count:
                child.inc(int(count))

    def exposition(self) -> bytes:
        """The text exposition (all workers' when ``PROMETHEUS_MULTIPROC_DIR`` is set)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
