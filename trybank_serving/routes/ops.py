"""Probes, model information and Prometheus metrics."""

from fastapi import APIRouter, Depends, HTTPException, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from trybank_serving.deps import get_state, require_api_key
from trybank_serving.metrics import registry
from trybank_serving.schemas import ModelInfo
from trybank_serving.state import ServingState

router = APIRouter(tags=["ops"])


@router.get("/health")
async def health() -> dict:
    """The process is up."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "Model or online store not loaded"}})
async def ready(state: ServingState = Depends(get_state)) -> dict:
    """A promoted model and the online store are loaded (/predict can answer). `ingest_ready` says
    whether /transactions has its idempotency index yet; until then it waits for it."""
    model, online = state.models.current, state.online
    body = {
        "model_version": model.version if model else None,
        "online_store_as_of": online.snapshot.as_of.isoformat() if online else None,
        "ingest_ready": state.bronze.ready,
    }
    if model is None or online is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, {"ready": False, **body})
    return {"ready": True, **body}


@router.get("/model", response_model=ModelInfo, dependencies=[Depends(require_api_key)])
async def model_info(state: ServingState = Depends(get_state)) -> ModelInfo:
    """The model answering /predict: version, threshold, test metrics and windows."""
    model = state.models.current
    if model is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no promoted model loaded")
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
    )


@router.get("/metrics")
async def metrics() -> Response:
    """Prometheus exposition: requests and latency per route, scores, decisions."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
