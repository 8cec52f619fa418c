"""Which paths are the console's (its routers' and its static files'): the API's role table leaves them to
tests/console/test_console_by_role.py."""

from __future__ import annotations

from helpgate.console.app import ROUTERS, STATIC_PATH

CONSOLE_PATHS = {
    STATIC_PATH,
    *(route.path for routes in ROUTERS for route in routes.routes),  # type: ignore[attr-defined]
}
