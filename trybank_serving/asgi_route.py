"""Routes that FastAPI documents like any other but that are served by plain ASGI callables.

FastAPI's per-request machinery (a Request object, two exit stacks, parameter solving, response
serialization) costs more than scoring a transaction does; ``/predict`` skips it and reads the body,
validates it with pydantic and sends pre-encoded JSON itself. ``FastPathApp`` goes one step further
and serves such routes before Starlette's middleware stack. Errors raised before the response
starts (``HTTPException``, ``RequestValidationError``) still go through the app's exception handlers,
so they look exactly like every other route's.
"""

from collections.abc import Callable

from fastapi import FastAPI, HTTPException, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request
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
    """The whole request body, refused as soon as it grows past ``limit`` bytes with a 422 naming
    ``body``, like every other bad input."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestValidationError(
                [{"loc": ("body",), "msg": f"body larger than {limit} bytes", "type": "too_large"}]
            )
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


class FastPathApp(FastAPI):
    """A FastAPI app that serves its ``fast_routes`` ahead of the middleware stack.

    The stack (server-error, telemetry, body-limit and exception middleware, an exit stack, then the
    router trying each route in turn) costs about as much per request as scoring a transaction. A
    fast route is found by one dict lookup and served inside ``middleware`` (the per-request
    middleware it must not skip, such as metrics, and the 500 answer to unexpected errors) and the
    app's exception handlers.
    Middleware added with ``add_middleware`` does not see fast routes. With OpenTelemetry on,
    ``fast_path=False`` sends every request through the full stack so that it is traced.
    """

    def __init__(
        self,
        *,
        fast_routes: list[AsgiRoute],
        middleware: Callable[[ASGIApp], ASGIApp],
        fast_path: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(routes=list(fast_routes), **kwargs)
        self.fast_routes = {
            (route.path, method): (route, middleware(self._handling_errors(route)))
            for route in (fast_routes if fast_path else ())
            for method in route.methods
        }

    def _handling_errors(self, route: AsgiRoute) -> ASGIApp:
        async def serve(scope: Scope, receive: Receive, send: Send) -> None:
            try:
                await route.asgi_app(scope, receive, send)
            except Exception as exc:
                handler = next(
                    (self.exception_handlers[c] for c in type(exc).__mro__ if c in self.exception_handlers), None
                )
                if handler is None:
                    raise
                response = await handler(Request(scope, receive), exc)
                await response(scope, receive, send)

        return serve

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_routes.get((scope.get("path"), scope.get("method")))
        if fast is None or scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        scope["route"] = fast[0]
        if self.root_path:
            scope["root_path"] = self.root_path
        await fast[1](scope, receive, send)
