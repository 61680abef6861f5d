"""Probes, model information and Prometheus metrics.

``/health`` is always open. ``/ready`` and ``/metrics`` (``monitoring``) are open for probes and
scrapers unless ``TRYBANK_API_PROTECT_OPS`` puts them behind the key; ``/model`` always needs it.
"""

from dataclasses import asdict

from fastapi import APIRouter, Depends, HTTPException, Response, status
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from trybank_serving.deps import get_state, require_api_key
from trybank_serving.metrics import registry
from trybank_serving.schemas import LoadRefusal, ModelInfo
from trybank_serving.state import ServingState

router = APIRouter(tags=["ops"])
monitoring = APIRouter(tags=["ops"])

_UNAUTHORIZED = {401: {"description": "Missing or wrong X-API-Key (when TRYBANK_API_KEY is set)"}}


@router.get("/health")
async def health() -> dict:
    """The process is up."""
    return {"status": "ok"}


@monitoring.get(
    "/ready",
    responses={
        503: {"description": "No good model or online store loaded, or no idempotency index: `reason` says why"},
        **_UNAUTHORIZED,  # with TRYBANK_API_PROTECT_OPS
    },
)
async def ready(state: ServingState = Depends(get_state)) -> dict:
    """A good model and online store are loaded (/predict can answer). `refused` lists the model
    or store that failed its checks (and was not loaded) since; `ingest_ready` says whether
    the idempotency index is open (until then /predict and /transactions wait for it; if it cannot
    be read, they and /ready answer 503)."""
    model, online = state.models.current, state.online
    refused = {
        name: asdict(refusals.last)
        for name, refusals in (("model", state.models.refusals), ("online_store", state.stores.refusals))
        if refusals.last is not None
    }
    body = {
        "model_version": model.version if model else None,
        "online_store_as_of": online.snapshot.as_of.isoformat() if online else None,
        "ingest_ready": state.bronze.ready,
        "refused": refused,
    }
    if model is None or online is None:
        missing = "model" if model is None else "online_store"
        why = refused[missing]["reason"] if missing in refused else "none promoted or built yet"
        reason = f"no {missing.replace('_', ' ')} loaded: {why}"
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, {"ready": False, "reason": reason, **body})
    if state.bronze.index_error is not None:
        reason = f"the idempotency index could not be read: {state.bronze.index_error}"
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, {"ready": False, "reason": reason, **body})
    return {"ready": True, **body}


@router.get(
    "/model",
    response_model=ModelInfo,
    dependencies=[Depends(require_api_key)],
    responses={503: {"description": "No good model loaded; `detail` gives the last load error"}, **_UNAUTHORIZED},
)
async def model_info(state: ServingState = Depends(get_state)) -> ModelInfo:
    """The model answering /predict: version, threshold, test metrics and windows, and the last
    promoted version refused since it loaded."""
    model, refused = state.models.current, state.models.refusals.last
    last_error = LoadRefusal(**asdict(refused)) if refused else None
    if model is None:
        detail = {"message": "no promoted model loaded", "last_load_error": last_error and last_error.model_dump()}
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail)
    m = model.metrics
    headline = ("roc_auc", "average_precision", "card_precision_at_100", "recall_at_1pct_fpr", "recall_by_scenario")
    return ModelInfo(
        version=model.version,
        algorithm=m.get("candidate", m.get("algorithm", "")),
        threshold=model.threshold,
        metrics={k: m[k] for k in headline if k in m},
        train_window=m.get("train_window", []),
        test_window=m.get("test_window", []),
        loaded_at=model.loaded_at,
        last_load_error=last_error,
    )


@monitoring.get("/metrics", response_class=PlainTextResponse, responses=_UNAUTHORIZED)
async def metrics() -> Response:
    """Prometheus exposition: requests and latency per route, scores, decisions, refused loads."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
