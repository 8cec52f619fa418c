"""GET /metrics: Prometheus's text format, open like most exporters unless HELPGATE_METRICS_TOKEN is set.

It exposes counts only (no addresses but the names of configured IMAP mailboxes, no message content), hence
public by default; with a token set, a scraper must send `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import SecretStr

from helpgate.api.openapi import PUBLIC, error
from helpgate.core.errors import NotAuthenticated
from helpgate.core.metrics import Exporter

router = APIRouter(tags=["health"])

EXAMPLE = """\
# HELP helpgate_tickets_created_total Tickets opened, by mail or over the API
# TYPE helpgate_tickets_created_total counter
helpgate_tickets_created_total{channel="mail"} 42.0
# HELP helpgate_inbound_backlog Stored messages waiting for the pipeline here
# TYPE helpgate_inbound_backlog gauge
helpgate_inbound_backlog 0.0
"""


def _require_token(request: Request) -> None:
    token: SecretStr | None = request.app.state.metrics_token
    if token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise NotAuthenticated("a valid metrics token is required (Authorization: Bearer <HELPGATE_METRICS_TOKEN>)")


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    openapi_extra=PUBLIC,
    response_class=Response,
    responses={
        200: {
            "description": "the metrics in Prometheus's text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}, "example": EXAMPLE}},
        },
        **error(401, "HELPGATE_METRICS_TOKEN is set and the request did not send it as a bearer token"),
    },
)
async def metrics(request: Request) -> Response:
    """Counters, histograms and queue gauges of this instance (docs/operations.md, "Metrics and logs"). Open to anyone
    unless HELPGATE_METRICS_TOKEN is set; then it needs `Authorization: Bearer <that token>`."""
    _require_token(request)
    exporter: Exporter = request.app.state.metrics
    return Response(await exporter.render(), media_type=CONTENT_TYPE_LATEST)
