"""POST /predict: features from the online store and the stream, scored without Spark, and the
transaction recorded in bronze with its answer before the answer is sent."""

from datetime import UTC, datetime

from fastapi import HTTPException, Security, status
from starlette.types import Receive, Scope, Send

from trybank_assets.features import FEATURES
from trybank_serving.asgi_route import AsgiRoute, read_body, send_json
from trybank_serving.bronze_appender import BronzeWriteFailed, ConflictingTransaction
from trybank_serving.deps import api_key_header, check_api_key, parse_body
from trybank_serving.metrics import INGESTED, SCORES, decision_counter
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

    event = event_of(tx)
    logged = {}

    def score() -> dict:
        features = online.features(event, state.stream)
        probability, reasons = model.score(features)
        answer = {
            "transaction_id": tx.transaction_id,  # orjson writes UUIDs itself, faster than str()
            "fraud_probability": probability,
            "decision": "decline" if probability >= model.threshold else "approve",
            "threshold": model.threshold,
            "model_version": model.version,
            "reasons": reasons,
        }
        logged.update(answer, features=features)
        return answer

    try:
        recorded = await state.bronze.record_scored(tx.bronze_record(), score)
    except ConflictingTransaction as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except BronzeWriteFailed as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"{exc}; nothing was recorded, retry") from exc
    if recorded.new:  # a seen transaction from now on: in the customer's and the terminal's history
        state.stream.add(event, state.online.snapshot.as_of.toordinal())
        INGESTED.inc()
    if recorded.scored:  # a retry was logged and counted the first time
        # vars(tx): the validated fields as pydantic stores them, which orjson encodes without a callback.
        state.predictions.append(
            logged | {"event_time": tx.event_time, "request": vars(tx), "predicted_at": datetime.now(UTC)}
        )
        SCORES.observe(logged["fraud_probability"])
        decision_counter(logged["decision"], model.version).inc()
    await send_json(send, recorded.answer)


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
        "`predictions/`.\n\nThe transaction is recorded as `POST /transactions` records it (bronze "
        "`source=api`, fsynced before the answer, in the customer's history for the next request), "
        "together with its answer: a retry with the same `transaction_id` and content gets the same answer "
        "(after a model reload too) and writes nothing; other content under the same id is a 409.\n\n" + REASON_CODES
    ),
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"example": TransactionIn.model_config["json_schema_extra"]["examples"][0]}}
        }
    },
    responses={
        401: {"description": "Missing or wrong X-API-Key (when TRYBANK_API_KEY is set)"},
        409: {"description": "A transaction_id was accepted before with other content"},
        503: {
            "description": "No promoted model or no online store yet, or bronze could not be written: "
            "nothing was recorded, retry"
        },
    },
)
