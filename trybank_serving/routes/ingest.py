"""POST /transactions: one transaction or a batch, durable in bronze before the answer."""

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError

from trybank_serving.asgi_route import read_body
from trybank_serving.bronze_appender import BronzeWriteFailed, ConflictingTransaction
from trybank_serving.deps import get_state, parse_body, require_api_key
from trybank_serving.metrics import INGESTED
from trybank_serving.online_features import event_of
from trybank_serving.schemas import IngestBatchResult, IngestResult, TransactionBatch, TransactionIn
from trybank_serving.state import ServingState

router = APIRouter(tags=["ingest"], dependencies=[Depends(require_api_key)])

_BATCH_EXAMPLE = {"transactions": TransactionIn.model_config["json_schema_extra"]["examples"]}
# Inline: FastAPI lists in components only the models (and the 422 body) that a route declares.
# TransactionIn and HTTPValidationError are there for /predict; TransactionBatch is declared
# nowhere, so a $ref to it would dangle.
_BATCH_SCHEMA = {
    k: v
    for k, v in TransactionBatch.model_json_schema(ref_template="#/components/schemas/{model}").items()
    if k != "$defs"
}


@router.post(
    "/transactions",
    status_code=status.HTTP_201_CREATED,
    response_model=IngestResult | IngestBatchResult,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/TransactionIn"},
                            _BATCH_SCHEMA,
                        ]
                    },
                    "examples": {
                        "one": {"value": TransactionIn.model_config["json_schema_extra"]["examples"][0]},
                        "batch": {"value": _BATCH_EXAMPLE},
                    },
                }
            },
        }
    },
    responses={
        200: {"description": "All transactions were accepted before: the original answer, nothing written"},
        401: {"description": "Missing or wrong X-API-Key (when TRYBANK_API_KEY is set)"},
        409: {"description": "A transaction_id was accepted before with other content"},
        422: {
            "description": "Invalid body; `detail` names each field (`body` for broken JSON or a body too large)",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}},
        },
        503: {"description": "Bronze could not be written (disk full, say): nothing was accepted, retry"},
    },
)
async def post_transactions(
    request: Request, response: Response, state: ServingState = Depends(get_state)
) -> IngestResult | IngestBatchResult:
    """Append one transaction or `{"transactions": [...]}` to bronze (`source=api`), idempotent on
    `transaction_id`, and update the customers' intra-day state for `/predict`."""
    body = await read_body(request.receive, state.settings.api_max_body_bytes)
    try:
        is_batch = isinstance(decoded := orjson.loads(body), dict) and "transactions" in decoded
    except orjson.JSONDecodeError:  # nested too deep included (json.loads raised RecursionError: a 500)
        is_batch = False  # let pydantic name the JSON error
    if is_batch:
        batch = parse_body(TransactionBatch, body, state.settings)
        if len(batch.transactions) > state.settings.api_max_batch:
            raise RequestValidationError(
                [
                    {
                        "loc": ("body", "transactions"),
                        "msg": f"at most {state.settings.api_max_batch} per batch",
                        "type": "too_long",
                    }
                ]
            )
        transactions = batch.transactions
    else:
        transactions = [parse_body(TransactionIn, body, state.settings)]

    try:
        outcomes = await state.bronze.append([t.bronze_record() for t in transactions])
    except ConflictingTransaction as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except BronzeWriteFailed as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"{exc}; nothing was accepted, retry") from exc
    as_of = state.online.snapshot.as_of.toordinal() if state.online else 0
    new = 0
    for tx, (_, replayed) in zip(transactions, outcomes, strict=True):
        if not replayed:
            state.stream.add(event_of(tx), as_of)
            new += 1
    INGESTED.inc(new)
    if new == 0:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replay"] = "true"
    results = [IngestResult(**result) for result, _ in outcomes]
    return IngestBatchResult(results=results) if is_batch else results[0]
