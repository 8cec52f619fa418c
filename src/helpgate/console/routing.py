"""The console's routes answer in HTML: a route class that turns the services' errors into pages (and a
missing session into the login form) instead of the API's JSON, for the console's routes only."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import Response

from helpgate.console import pages
from helpgate.console.session import SignInNeeded
from helpgate.core.errors import HelpgateError

log = logging.getLogger(__name__)


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except SignInNeeded:
                return pages.sign_in(request)
            except RequestValidationError as error:
                first = error.errors()[0] if error.errors() else {}
                where = ".".join(str(part) for part in first.get("loc", ()))
                detail = f"{where}: {first.get('msg', 'not valid')}" if where else "the request is not valid"
                return pages.page(request, None, "error.html.j2", status=422, detail=detail)
            except HelpgateError as error:
                if error.http_status >= 500:
                    log.error("console.error path=%s detail=%s", request.url.path, error.detail)
                return pages.page(request, None, "error.html.j2", status=error.http_status, detail=error.detail)

        return handler


def router() -> APIRouter:
    """A router for console pages: HTML errors, and left out of the API's OpenAPI document."""
    return APIRouter(route_class=ConsoleRoute, include_in_schema=False)
