"""Error, health and readiness answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from helpgate.api import examples


class FieldProblem(BaseModel):
    """One way a request does not fit the schema, as FastAPI reports it: where (`loc`) and what (`msg`)."""

    type: str
    loc: list[str | int]
    msg: str
    input: object = None
    ctx: dict[str, object] | None = None


class ErrorOut(BaseModel):
    """The body of every error answer. `detail` says what is wrong in a sentence; when the request does not
    fit the schema (422), it lists the problems instead."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.ERROR, examples.VALIDATION_ERROR]})
    detail: str | list[FieldProblem]


class HealthOut(BaseModel):
    """`status` ok (200) or degraded (503), then one object per part (store, smtp, http, inbound, outbound,
    workflows, imap), each with `ok` and what that part reports."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [examples.HEALTH]})
    status: Literal["ok", "degraded"]


class ReadinessCheckOut(BaseModel):
    """One condition of readiness: whether it holds, and what was found."""

    ok: bool
    detail: str


class ReadinessOut(BaseModel):
    """`ready` (200) or `not ready` (503), the names of the conditions that fail, and every condition checked
    (store, smtp, http, relay)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "not ready",
                    "not_ready": ["relay"],
                    "checks": {
                        "store": {"ok": True, "detail": "answers ping"},
                        "smtp": {"ok": True, "detail": "listening on 0.0.0.0:2525"},
                        "http": {"ok": True, "detail": "serving on 0.0.0.0:8000"},
                        "relay": {
                            "ok": False,
                            "detail": "running; the oldest undelivered outbox event is 742 s old (limit 600 s)",
                        },
                    },
                }
            ]
        }
    )
    status: Literal["ready", "not ready"]
    not_ready: list[str]
    checks: dict[str, ReadinessCheckOut]
