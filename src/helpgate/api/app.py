"""The FastAPI application: routes, error mapping, and the state routes read (issuer, health probe, mail)."""

from __future__ import annotations

import logging
from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from helpgate import __version__
from helpgate.api.body_limit import BodyLimit, BodyLimits
from helpgate.api.deferred import DeferredWork
from helpgate.api.docs import serve_docs
from helpgate.api.openapi import document_body_limit, keep_null_examples
from helpgate.api.request_metrics import RequestMetrics
from helpgate.api.routes import (
    audit,
    auth,
    categories,
    events,
    health,
    mailboxes,
    metrics,
    reports,
    skills,
    suppressions,
    tickets,
    triage,
    users,
)
from helpgate.api.routes.health import HealthProbe
from helpgate.api.security_headers import SecurityHeaders
from helpgate.api.validation_errors import invalid_request, unparseable_body
from helpgate.core.errors import HelpgateError, NotAuthenticated
from helpgate.core.security import TokenIssuer
from helpgate.mail_out.outgoing import Outgoing

log = logging.getLogger(__name__)


def create_app(
    *,
    issuer: TokenIssuer,
    refresh_ttl: timedelta,
    health_probe: HealthProbe,
    outgoing: Outgoing,
    body_limits: BodyLimits,
    deferred: DeferredWork,
) -> FastAPI:
    app = FastAPI(
        title="helpgate",
        version=__version__,
        summary="Email-first support ticketing gateway",
        docs_url=None,  # served by serve_docs, from the package
        redoc_url=None,
    )
    app.state.issuer = issuer
    app.state.refresh_ttl = refresh_ttl
    app.state.health = health_probe
    app.state.outgoing = outgoing
    app.state.deferred = deferred
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(auth.router)
    app.include_router(tickets.router)
    app.include_router(users.router)
    app.include_router(skills.router)
    app.include_router(categories.router)
    app.include_router(mailboxes.router)
    app.include_router(audit.router)
    app.include_router(suppressions.router)
    app.include_router(events.router)
    app.include_router(reports.router)
    app.include_router(triage.router)
    serve_docs(app)
    keep_null_examples(app)
    document_body_limit(app, body_limits.of)
    app.add_middleware(BodyLimit, limits=body_limits)
    app.add_middleware(RequestMetrics)  # outside the body limit: times the 413s too
    app.add_middleware(SecurityHeaders)  # outermost: on every answer, 413s included

    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, unparseable_body)

    @app.exception_handler(HelpgateError)
    async def _helpgate_error(request: Request, error: HelpgateError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, NotAuthenticated) else None
        if error.http_status >= 500:
            log.error("api.error path=%s status=%d detail=%s", request.url.path, error.http_status, error.detail)
        return JSONResponse({"detail": error.detail}, status_code=error.http_status, headers=headers)

    return app
