"""ASGI middleware putting browser security headers on every answer (issue 14, finding 14).

`X-Content-Type-Options: nosniff` (a browser never runs an answer as something its type does not say),
`Referrer-Policy: no-referrer` (no URL of ours, with its query, goes to another site), and a
Content-Security-Policy that allows nothing and no framing, for answers that set none of their own: the API
answers JSON, which needs nothing; the HTML pages (/docs) set the policy they need.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)
