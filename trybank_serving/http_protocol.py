"""uvicorn's httptools protocol with deadlines for reading a request.

uvicorn closes idle keep-alive connections, but has no limit on a request that arrives slowly: a
client trickling header or body bytes (or opening a connection and sending nothing) held it for
as long as it liked (>= 40 s in a probe), and enough such clients take every connection. Here a
connection must deliver a request's headers within ``header_timeout`` of its first byte (or of the
connection), and the body within ``body_timeout`` of the headers; otherwise it is closed.
"""

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from trybank_assets.settings import TrybankSettings


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    header_timeout: float = 10.0
    body_timeout: float = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    @classmethod
    def with_timeouts(cls, header_timeout: float, body_timeout: float) -> type["DeadlineHttpToolsProtocol"]:
        return type(cls.__name__, (cls,), {"header_timeout": header_timeout, "body_timeout": body_timeout})

    def _arm(self, seconds: float | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None if seconds is None else self.loop.call_later(seconds, self._deadline_passed)

    def _deadline_passed(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._arm(None)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.header_timeout)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_timeout)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._arm(None)  # from here the app answers; between requests uvicorn's keep-alive timeout applies


def server_options(settings: TrybankSettings) -> dict:
    """uvicorn options of every server that runs the app (``trybank serve``, tests, benchmarks)."""
    return {
        "http": DeadlineHttpToolsProtocol.with_timeouts(
            settings.api_header_timeout_seconds, settings.api_body_timeout_seconds
        ),
        "timeout_keep_alive": settings.api_keep_alive_seconds,
    }
