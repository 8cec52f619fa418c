"""ASGI middleware refusing a request body over its route's limit with 413, before the route holds it all.

Without it FastAPI reads any body whole into memory and parses it: one client could send gigabytes of JSON.
A declared `Content-Length` over the limit is answered at once, without reading the body; a chunked body is
counted as it arrives and refused as soon as it passes the limit (the route reading it gets an HTTPException,
which FastAPI passes on as it is and Starlette answers as `{"detail": ...}`).

Two limits: `default` for every route, `large` for the paths that legitimately carry big bodies (an agent's
reply with attachments in base64, the Inngest server's calls with step state).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Paths allowed the large limit: replies (attachments as base64 over the API, as files from the console) and
#: the Inngest endpoint.
LARGE_PATHS = re.compile(r"/api/tickets/[^/]+/replies|/tickets/[^/]+/reply|/api/inngest")


@dataclass(frozen=True)
class BodyLimits:
    default: int
    large: int

    @classmethod
    def for_attachments(cls, *, request_bytes: int, attachment_bytes: int) -> BodyLimits:
        """`large` fits `attachment_bytes` of files in base64 (4/3 of their size) plus an ordinary request."""
        return cls(default=request_bytes, large=request_bytes + -(-attachment_bytes * 4 // 3))

    def of(self, path: str) -> int:
        return self.large if LARGE_PATHS.fullmatch(path) else self.default


def _too_large(limit: int) -> str:
    return f"request body over {limit} bytes"


class BodyLimit:
    def __init__(self, app: ASGIApp, *, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.of(str(scope["path"]))
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:  # the server checked the syntax
            await JSONResponse({"detail": _too_large(limit)}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, detail=_too_large(limit))
            return message

        await self.app(scope, counted, send)
