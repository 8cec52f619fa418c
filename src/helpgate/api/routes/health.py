"""Liveness with the state of the store and the listeners."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])

HealthProbe = Callable[[], Awaitable[dict[str, Any]]]


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    probe: HealthProbe = request.app.state.health
    report = await probe()
    healthy = all(part.get("ok", False) for part in report.values() if isinstance(part, dict))
    return JSONResponse({"status": "ok" if healthy else "degraded", **report}, status_code=200 if healthy else 503)
