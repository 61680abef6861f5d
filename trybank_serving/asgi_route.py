"""A route that FastAPI documents like any other but that is served by a plain ASGI callable.

FastAPI's per-request machinery (a Request object, two exit stacks, parameter solving, response
serialization) costs more than scoring a transaction does; ``/predict`` skips it and reads the body,
validates it with pydantic and sends pre-encoded JSON itself. Errors raised before the response
starts (``HTTPException``, ``RequestValidationError``) still go through the app's exception handlers,
so they look exactly like every other route's.
"""

from fastapi import HTTPException, status
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send


class AsgiRoute(APIRoute):
    def __init__(self, path: str, app: ASGIApp, *, body: type[BaseModel], **kwargs) -> None:
        async def documented(payload: body) -> None:  # the OpenAPI operation only; never called
            raise NotImplementedError

        super().__init__(path, documented, **kwargs)
        self.asgi_app = app

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in self.methods:
            raise HTTPException(status.HTTP_405_METHOD_NOT_ALLOWED, headers={"Allow": ", ".join(self.methods)})
        await self.asgi_app(scope, receive, send)


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body, refusing with 413 as soon as it grows past ``limit`` bytes."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body larger than {limit} bytes")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_json(send: Send, body: bytes) -> None:
    """Send an already encoded JSON body with status 200."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
