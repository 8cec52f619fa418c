"""Liveness (/healthz: the state of every part) and readiness (/readyz: may this instance take traffic)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from helpgate.api.openapi import PUBLIC
from helpgate.api.schemas.errors import HealthOut, ReadinessOut

router = APIRouter(tags=["health"])

HealthProbe = Callable[[], Awaitable[dict[str, Any]]]
ReadinessProbe = Callable[[], Awaitable[dict[str, dict[str, Any]]]]  # condition → {"ok", "detail"}


@router.get(
    "/healthz",
    response_model=HealthOut,
    openapi_extra=PUBLIC,
    responses={503: {"model": HealthOut, "description": "a part is down: `status` is degraded, its `ok` false"}},
)
async def healthz(request: Request) -> JSONResponse:
    """Liveness for load balancers and monitors: 200 when every part works, 503 when one does not."""
    probe: HealthProbe = request.app.state.health
    report = await probe()
    healthy = all(part.get("ok", False) for part in report.values() if isinstance(part, dict))
    return JSONResponse({"status": "ok" if healthy else "degraded", **report}, status_code=200 if healthy else 503)


@router.get(
    "/readyz",
    summary="Readiness",
    response_model=ReadinessOut,
    openapi_extra=PUBLIC,
    responses={503: {"model": ReadinessOut, "description": "not ready: `not_ready` names the conditions that fail"}},
)
async def readyz(request: Request) -> JSONResponse:
    """Readiness for orchestrators: 200 when this instance can take traffic (the store answers, the SMTP
    listener listens, the HTTP server serves, and the outbox relay keeps up: the oldest undelivered event is
    younger than HELPGATE_READY_OUTBOX_MAX_AGE_SECONDS), else 503 naming what is not ready."""
    probe: ReadinessProbe = request.app.state.readiness
    checks = await probe()
    failing = [name for name, check in checks.items() if not check["ok"]]
    body = {"status": "not ready" if failing else "ready", "not_ready": failing, "checks": checks}
    return JSONResponse(body, status_code=503 if failing else 200)
