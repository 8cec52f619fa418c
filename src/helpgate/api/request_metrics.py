"""ASGI middleware timing each HTTP request into helpgate_http_request_duration_seconds.

The route label is the matched route's template (`/api/tickets/{number}`), never the raw path, so the number
of series stays bounded whatever clients ask for; a request no route matched is `unmatched`. Methods other
than the usual ones are `other`.
"""

from __future__ import annotations

import time

from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from helpgate.core import metrics

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


def route_template(scope: Scope, root_path: str) -> str:
    """The template of the route that handled the request (routing records it in the scope), with the path
    of any mount it sits under; for the app's own plain routes (/docs, /openapi.json) found by matching."""
    route = scope.get("route")
    if isinstance(route, Route):
        mounted_at = str(scope.get("root_path", ""))
        prefix = mounted_at.removeprefix(root_path) if mounted_at.startswith(root_path) else ""
        return prefix + route.path
    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", []):
        if isinstance(candidate, Route) and candidate.matches(scope)[0] is Match.FULL:
            return candidate.path
    return UNMATCHED


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        root_path = str(scope.get("root_path", ""))
        status = 500  # what the client gets if the app fails before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            metrics.HTTP_SECONDS.labels(
                method=method, route=route_template(scope, root_path), status=str(status)
            ).observe(time.perf_counter() - started)
