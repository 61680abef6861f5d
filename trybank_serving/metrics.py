"""Prometheus metrics: requests and latency per route, scores and decisions, refused loads."""

import functools
import time

from prometheus_client import CollectorRegistry, Counter, Histogram

registry = CollectorRegistry()
REQUESTS = Counter("trybank_http_requests", "HTTP requests", ["route", "method", "status"], registry=registry)
LATENCY = Histogram(
    "trybank_http_request_seconds",
    "Request latency",
    ["route"],
    buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0),
    registry=registry,
)
SCORES = Histogram(
    "trybank_fraud_probability",
    "Scores returned by /predict",
    buckets=[i / 20 for i in range(1, 21)],
    registry=registry,
)
DECISIONS = Counter(
    "trybank_decisions", "Decisions returned by /predict", ["decision", "model_version"], registry=registry
)
INGESTED = Counter("trybank_ingested_transactions", "Transactions written to bronze", registry=registry)
REFUSED_LOADS = Counter(
    "trybank_refused_loads",
    "Models or online stores that failed validation and were not loaded (once per file and reason)",
    ["artefact"],
    registry=registry,
)


# Labelled children cached: prometheus-client's ``labels()`` validates and locks on every call.
@functools.cache
def decision_counter(decision: str, model_version: str) -> Counter:
    return DECISIONS.labels(decision, model_version)


@functools.cache
def _route_latency(route: str) -> Histogram:
    return LATENCY.labels(route)


@functools.cache
def _route_requests(route: str, method: str, status: int) -> Counter:
    return REQUESTS.labels(route, method, str(status))


class MetricsMiddleware:
    """Plain ASGI middleware (cheaper than BaseHTTPMiddleware on the hot path)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            _route_latency(path).observe(time.perf_counter() - started)
            _route_requests(path, scope["method"], status["code"]).inc()
