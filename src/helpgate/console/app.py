"""The console mounted on the gateway's app: its routes (pages, forms, live stream) and its static files.

The console is another client of the services the API uses; the API knows nothing of it.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from helpgate.console.pages import STATIC
from helpgate.console.presence import Presence
from helpgate.console.routes import (
    accounts,
    admin,
    collisions,
    dashboard,
    live,
    login,
    mailboxes,
    queue,
    ratings,
    tickets,
)

STATIC_PATH = "/console/static"
ROUTERS = (
    login.routes,
    accounts.routes,
    ratings.routes,
    queue.routes,
    tickets.routes,
    collisions.routes,
    dashboard.routes,
    admin.routes,
    mailboxes.routes,
    live.routes,
)


def mount(app: FastAPI) -> None:
    app.state.presence = Presence()
    for routes in ROUTERS:
        app.include_router(routes)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC), name="console-static")
