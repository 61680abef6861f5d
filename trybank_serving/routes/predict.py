"""POST /predict: features from the online store and the stream, scored without Spark."""

from datetime import UTC, datetime

import orjson
from fastapi import HTTPException, Security, status
from starlette.types import Receive, Scope, Send

from trybank_assets.features import FEATURES
from trybank_serving.asgi_route import AsgiRoute, read_body, send_json
from trybank_serving.deps import api_key_header, check_api_key, parse_body
from trybank_serving.metrics import SCORES, decision_counter
from trybank_serving.online_features import event_of
from trybank_serving.schemas import PredictResponse, TransactionIn
from trybank_serving.state import ServingState


async def predict(scope: Scope, receive: Receive, send: Send) -> None:
    state: ServingState = scope["app"].state.serving
    if state.api_key is not None:
        check_api_key(state, next((v for k, v in scope["headers"] if k == b"x-api-key"), None))
    tx = parse_body(TransactionIn, await read_body(receive, state.settings.api_max_body_bytes), state.settings)
    model, online = state.models.current, state.online
    if model is None or online is None:
        missing = "a promoted model" if model is None else "the online store"
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"not ready: {missing} is not loaded")

    features = online.features(event_of(tx), state.stream)
    probability, reasons = model.score(features)
    decision = "decline" if probability >= model.threshold else "approve"
    answer = {
        "transaction_id": tx.transaction_id,  # orjson writes UUIDs itself, faster than str()
        "fraud_probability": probability,
        "decision": decision,
        "threshold": model.threshold,
        "model_version": model.version,
        "reasons": reasons,
    }
    # vars(tx): the validated fields as pydantic stores them, which orjson encodes without a callback.
    state.predictions.append(
        {
            **answer,
            "event_time": tx.event_time,
            "request": vars(tx),
            "features": features,
            "predicted_at": datetime.now(UTC),
        }
    )
    SCORES.observe(probability)
    decision_counter(decision, model.version).inc()
    await send_json(send, orjson.dumps(answer))


REASON_CODES = "| reason code | feature | what it measures |\n|---|---|---|\n" + "".join(
    f"| `{f.code}` | `{f.name}` | {f.description} |\n" for f in FEATURES
)

route = AsgiRoute(
    "/predict",
    predict,
    body=TransactionIn,
    methods=["POST"],
    name="predict",
    tags=["predict"],
    response_model=PredictResponse,
    dependencies=[Security(api_key_header)],  # documents the key; predict() checks it itself
    description=(
        "Score a transaction: calibrated fraud probability, decision at the model's threshold, model version "
        "and up to three reasons: the features that pushed the score up most (a negligible push is not a "
        "reason), each with a stable code, a sentence, the value and its share of the log-odds. Logged to "
        "`predictions/`.\n\n" + REASON_CODES
    ),
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"example": TransactionIn.model_config["json_schema_extra"]["examples"][0]}}
        }
    },
    responses={
        401: {"description": "Missing or wrong X-API-Key (when TRYBANK_API_KEY is set)"},
        503: {"description": "No promoted model or no online store yet"},
    },
)
