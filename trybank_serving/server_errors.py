"""An unexpected error answered as a 500 on a connection that stays open.

Starlette's outermost middleware answers 500 and then re-raises for the server to log it; uvicorn
then closes the connection of a request whose app raised, so each 500 also reset the client's
keep-alive connection (and its next request failed). Here the error is logged and answered, and
the server sees a request that completed.
"""

import logging

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("trybank_serving")


class AnswerServerErrors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            if started:
                raise  # half a response is out: only closing the connection ends it
            await JSONResponse({"detail": "internal server error"}, status_code=500)(scope, receive, send)
