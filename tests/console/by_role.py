"""Which paths are the console's (its routers' and its static files'): the API's role table leaves them to
tests/console/test_console_by_role.py."""

from __future__ import annotations

from helpgate.console.app import STATIC_PATH
from helpgate.console.routes import live, login, queue, tickets

CONSOLE_PATHS = {
    STATIC_PATH,
    *(route.path for routes in (login.routes, queue.routes, tickets.routes, live.routes) for route in routes.routes),  # type: ignore[attr-defined]
}
