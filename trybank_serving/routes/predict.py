"""POST /predict: features from the online store and the stream, scored without Spark."""

from datetime import UTC, datetime

import orjson
from fastapi import APIRouter, HTTPException, Request, Response, status

from trybank_serving.deps import get_state, parse_body, raw_body, require_api_key
from trybank_serving.metrics import DECISIONS, SCORES
from trybank_serving.online_features import event_of
from trybank_serving.schemas import PredictResponse, TransactionIn

router = APIRouter(tags=["predict"])


@router.post(
    "/predict",
    response_model=PredictResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/TransactionIn"},
                    "example": TransactionIn.model_config["json_schema_extra"]["examples"][0],
                }
            },
        }
    },
    responses={
        401: {"description": "Missing or wrong X-API-Key (when TRYBANK_API_KEY is set)"},
        503: {"description": "No promoted model or no online store yet"},
    },
)
async def predict(request: Request) -> Response:
    """Score a transaction: fraud probability, decision at the model's threshold, model version and
    the three features that pushed the score up most. Logged to `predictions/`."""
    # Called directly rather than through Depends: on this path FastAPI's dependency resolution
    # costs about as much as computing the features (see benchmarks/serving.py).
    state = await get_state(request)
    await require_api_key(request)
    tx = parse_body(TransactionIn, await raw_body(request))
    model, online = state.models.current, state.online
    if model is None or online is None:
        missing = "a promoted model" if model is None else "the online store"
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"not ready: {missing} is not loaded")

    features = online.features(event_of(tx), state.stream)
    probability, reasons = model.score(features)
    decision = "decline" if probability >= model.threshold else "approve"
    answer = {
        "transaction_id": str(tx.transaction_id),
        "fraud_probability": probability,
        "decision": decision,
        "threshold": model.threshold,
        "model_version": model.version,
        "reasons": reasons,
    }
    state.predictions.append(
        {
            **answer,
            "event_time": tx.event_time.isoformat().replace("+00:00", "Z"),
            "request": tx.model_dump(mode="json"),
            "features": features,
            "predicted_at": datetime.now(UTC).isoformat(),
        }
    )
    SCORES.observe(probability)
    DECISIONS.labels(decision, model.version).inc()
    return Response(orjson.dumps(answer), media_type="application/json")
