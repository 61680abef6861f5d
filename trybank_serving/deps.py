"""Shared dependencies: the serving state, the API key, and bodies validated from raw bytes."""

import secrets
from typing import TypeVar

from fastapi import HTTPException, Request, Security, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ValidationError

from trybank_assets.settings import TrybankSettings
from trybank_serving.state import ServingState

M = TypeVar("M", bound=BaseModel)


# Dependencies are async on purpose: FastAPI runs a sync dependency in a worker thread, a hop
# that costs more than all of /predict's own work.


async def get_state(request: Request) -> ServingState:
    return request.app.state.serving


# Declared as a security scheme, so that /docs has an "Authorize" button that sends the key.
api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The key in TRYBANK_API_KEY; no key is needed when it is unset."
)


async def require_api_key(request: Request, key: str | None = Security(api_key_header)) -> None:
    check_api_key(request.app.state.serving, key.encode() if key is not None else None)


def check_api_key(state: ServingState, given: bytes | None) -> None:
    if state.api_key is not None and not secrets.compare_digest(given or b"", state.api_key):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong X-API-Key header")


def parse_body(model: type[M], body: bytes, settings: TrybankSettings | None = None) -> M:
    """Validate straight from the raw bytes; errors become FastAPI's usual 422 naming the field.

    ``settings`` reach the validators as context (the accepted event-time window is the app's)."""
    try:
        return model.model_validate_json(body, context=settings)
    except ValidationError as exc:
        errors = [
            {**e, "loc": ("body", *e["loc"])}
            for e in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise RequestValidationError(errors) from None
