"""Builds the FastAPI app: `uvicorn trybank_serving.app:app` or `trybank serve`."""

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from trybank_assets.settings import TrybankSettings, get_settings
from trybank_serving.asgi_route import FastPathApp
from trybank_serving.deps import require_api_key
from trybank_serving.metrics import MetricsMiddleware
from trybank_serving.routes import docs, ingest, ops, predict
from trybank_serving.server_errors import AnswerServerErrors
from trybank_serving.state import ServingState


def create_app(settings: TrybankSettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state = ServingState(settings)
        state.start()
        app.state.serving = state
        try:
            yield
        finally:
            state.close()  # flushes the prediction log

    app = FastPathApp(
        title="TryBank fraud scoring",
        description=(
            "Ingest card transactions and score them in real time with the promoted fraud model. "
            "Write and scoring endpoints need the `X-API-Key` header when `TRYBANK_API_KEY` is set "
            "(**Authorize** sends it from this page)."
        ),
        version="1",
        lifespan=lifespan,
        docs_url=None,  # served from local assets by routes/docs.py
        redoc_url=None,
        telemetry={signal: settings.api_opentelemetry for signal in ("tracing", "metrics", "logs")},
        fast_routes=[predict.route],
        middleware=lambda fast_route: MetricsMiddleware(AnswerServerErrors(fast_route)),
        fast_path=not settings.api_opentelemetry,
    )
    app.include_router(ingest.router)
    app.include_router(ops.router)
    app.include_router(ops.monitoring, dependencies=[Depends(require_api_key)] if settings.api_protect_ops else [])
    docs.add_offline_docs(app)
    app.add_middleware(AnswerServerErrors)
    app.add_middleware(MetricsMiddleware)
    return app


app = create_app()
