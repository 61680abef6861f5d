"""The API as documented: OpenAPI that resolves and declares the key, offline docs, hostile bodies
as 422s, 500s that keep the connection, and ops endpoints behind the key on request."""

import http.client
import re
import socket
import threading
import time

import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

from trybank_serving.asgi_route import AsgiRoute, FastPathApp
from trybank_serving.metrics import MetricsMiddleware
from trybank_serving.server_errors import AnswerServerErrors
from trybank_tests.serving_tests.conftest import HEADERS

DEEP = 100_000


def test_openapi_refs_resolve_and_the_key_is_a_security_scheme(empty_client):
    spec = empty_client.get("/openapi.json").json()
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', empty_client.get("/openapi.json").text))
    assert "TransactionIn" in refs and refs <= set(spec["components"]["schemas"])
    assert spec["components"]["securitySchemes"]["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "The key in TRYBANK_API_KEY; no key is needed when it is unset.",
    }
    for path, method in (("/transactions", "post"), ("/predict", "post"), ("/model", "get")):
        operation = spec["paths"][path][method]
        assert operation["security"] == [{"APIKeyHeader": []}], path
        assert "401" in operation["responses"], path
    for path in ("/transactions", "/predict"):
        assert "422" in spec["paths"][path]["post"]["responses"], path
    body = spec["paths"]["/transactions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["oneOf"][1]["properties"]["transactions"]["items"] == {"$ref": "#/components/schemas/TransactionIn"}


@pytest.mark.parametrize("path", ["/transactions", "/predict"])
@pytest.mark.parametrize(
    "body", [b"[" * DEEP, b'{"transactions": ' + b"[" * DEEP, b'{"a":' * DEEP], ids=["list", "batch", "object"]
)
def test_deeply_nested_json_is_422_naming_body(empty_client, path, body):
    response = empty_client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body"]


@pytest.mark.parametrize(("page", "assets"), [("/docs", 3), ("/redoc", 2)])
def test_docs_pages_load_only_local_assets(empty_client, page, assets):
    html = empty_client.get(page)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "http://" not in html.text and "https://" not in html.text
    urls = re.findall(r'(?:src|href)="([^"]+)"', html.text)
    assert len(urls) == assets
    expected = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    for url in urls:
        asset = empty_client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith(expected[url[url.rindex(".") :]]), url
        assert len(asset.content) > 1000, url


def test_ops_endpoints_are_open_by_default(empty_client):
    for path in ("/health", "/ready", "/metrics"):
        assert empty_client.get(path, headers={"X-API-Key": ""}).status_code != 401, path


def test_protect_ops_puts_metrics_and_ready_behind_the_key(tmp_path):
    from fastapi.testclient import TestClient

    from trybank_serving.app import create_app
    from trybank_tests.serving_tests.conftest import serving_settings

    with TestClient(create_app(serving_settings(tmp_path, api_protect_ops=True))) as client:
        assert client.get("/health").status_code == 200
        for path in ("/ready", "/metrics"):
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers={"X-API-Key": "wrong"}).status_code == 401, path
        assert client.get("/metrics", headers=HEADERS).status_code == 200
        assert client.get("/ready", headers=HEADERS).status_code == 503  # authorized; nothing loaded
        spec = client.get("/openapi.json").json()
        assert spec["paths"]["/metrics"]["get"]["security"] == [{"APIKeyHeader": []}]


class _Body(BaseModel):
    n: int


def _app_that_fails() -> FastAPI:
    """Both ways a request is served: a fast route and a route through the middleware stack."""

    async def fails_fast(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("a bug")

    app = FastPathApp(
        fast_routes=[AsgiRoute("/fast", fails_fast, body=_Body, methods=["POST"])],
        middleware=lambda route: MetricsMiddleware(AnswerServerErrors(route)),
    )

    @app.get("/stack")
    async def fails_in_the_stack() -> None:
        raise RuntimeError("a bug")

    @app.get("/ok")
    async def ok() -> dict:
        return {"ok": True}

    app.add_middleware(AnswerServerErrors)
    return app


def test_a_500_answers_and_keeps_the_connection_open():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_app_that_fails(), host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        for method, path in [("POST", "/fast"), ("GET", "/stack"), ("POST", "/fast")]:
            connection.request(method, path, body=b'{"n": 1}' if method == "POST" else None)
            response = connection.getresponse()
            assert response.status == 500
            response.read()
            sock = connection.sock
            connection.request("GET", "/ok")  # on the same connection: it was not closed
            assert connection.sock is sock
            assert connection.getresponse().read() == b'{"ok":true}'
    finally:
        server.should_exit = True
        thread.join(10)
