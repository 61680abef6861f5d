"""Shared dependencies: the serving state, the API key, and bodies validated from raw bytes."""

import secrets
from typing import TypeVar

from fastapi import HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from trybank_serving.state import ServingState

M = TypeVar("M", bound=BaseModel)


# Dependencies are async on purpose: FastAPI runs a sync dependency in a worker thread, a hop
# that costs more than all of /predict's own work.


async def get_state(request: Request) -> ServingState:
    return request.app.state.serving


async def require_api_key(request: Request) -> None:
    expected = request.app.state.serving.settings.api_key
    if expected is None:
        return
    given = request.headers.get("x-api-key", "")
    if not secrets.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong X-API-Key header")


async def raw_body(request: Request) -> bytes:
    limit = request.app.state.serving.settings.api_max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body larger than {limit} bytes")
    body = await request.body()
    if len(body) > limit:
        raise HTTPException(413, f"body larger than {limit} bytes")
    return body


def parse_body(model: type[M], body: bytes) -> M:
    """Validate straight from the raw bytes; errors become FastAPI's usual 422 naming the field."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = [
            {**e, "loc": ("body", *e["loc"])}
            for e in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise RequestValidationError(errors) from None
