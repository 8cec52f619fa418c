"""What the OpenAPI document says beyond the routes' types: the error answers each route may give (all with
the body `ErrorOut`, as `app.py` and FastAPI send them) and which routes need no token.

tests/api/test_openapi.py fails when a route leaves any of this out.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel

from helpgate.api import examples, schemas
from helpgate.api.schemas.errors import ErrorOut

Responses = dict[int | str, dict[str, Any]]

# An operation-level `security: []` says "no token needed" (OpenAPI 3.1, section 4.8.10), rather than nothing.
PUBLIC: dict[str, Any] = {"security": []}

_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "integer"}}}
_WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}}

# status -> (what it means, an example `detail`)
_MEANINGS: dict[int, tuple[str, str]] = {
    400: ("the body is not valid JSON", "There was an error parsing the body"),
    401: (
        "no valid access token: log in at /api/auth/login and send `Authorization: Bearer <access_token>`",
        "not authenticated",
    ),
    403: ("your role may not do this", "only admins can do this"),
    404: ("not found, or not yours to see", "ticket 42 not found"),
    409: ("conflicts with what is stored", "a user with email sam@example.com exists"),
    413: ("the request is too large", "attachments total 12582912 bytes; at most 10485760 are allowed"),
    422: (
        "the request does not fit the schema (`detail` lists the problems) or a value is refused (`detail` says why)",
        "",
    ),
    429: ("too many attempts: wait the seconds the Retry-After header gives", "too many attempts; try again later"),
    502: ("a service helpgate asked gave no usable answer", "gemini failed after 3 attempts: timeout after 20 s"),
}


def error(status: int, description: str | None = None, *, detail: str | None = None) -> Responses:
    """One documented error answer; `description` says what it means for this route, `detail` is an example."""
    meaning, usual_detail = _MEANINGS[status]
    example = examples.VALIDATION_ERROR if status == 422 else {"detail": detail or usual_detail}
    response: dict[str, Any] = {
        "model": ErrorOut,
        "description": description or meaning,
        "content": {"application/json": {"example": example}},
    }
    if status == 401:
        response["headers"] = _WWW_AUTHENTICATE
    elif status == 429:
        response["headers"] = _RETRY_AFTER
    return {status: response}


def errors(*statuses: int) -> Responses:
    """Several documented error answers, each with its usual meaning."""
    documented: Responses = {}
    for status in statuses:
        documented |= error(status)
    return documented


def _model_examples() -> dict[str, list[object]]:
    """The examples each model of the `schemas` modules declares, by model name, as JSON."""
    found: dict[str, list[object]] = {}
    for info in pkgutil.iter_modules(schemas.__path__):
        module = importlib.import_module(f"{schemas.__name__}.{info.name}")
        for model in vars(module).values():
            if isinstance(model, type) and issubclass(model, BaseModel) and model.__module__ == module.__name__:
                extra = model.model_config.get("json_schema_extra")
                if isinstance(extra, dict) and isinstance(extra.get("examples"), list):
                    found[model.__name__] = jsonable_encoder(extra["examples"])
    return found


def keep_null_examples(app: FastAPI) -> None:
    """FastAPI drops every null from the document, inside examples too (fastapi/fastapi#5559), so the example
    of a model with a nullable required field would not fit the model's own schema: put the models' examples
    back as they were written."""
    build = app.openapi
    declared = _model_examples()

    def openapi() -> dict[str, Any]:
        document = build()
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            model_examples = declared.get(name.removesuffix("-Output").removesuffix("-Input"))
            if model_examples is not None:
                schema["examples"] = model_examples
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def document_body_limit(app: FastAPI, limit_of: Callable[[str], int]) -> None:
    """Every operation taking a body may answer 413 (api/body_limit.py): say so where it does not already."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()
        for path, operations in document.get("paths", {}).items():
            for operation in operations.values():
                if "requestBody" in operation and "413" not in operation["responses"]:
                    limit = limit_of(path)
                    operation["responses"]["413"] = {
                        "description": f"the body is over {limit} bytes",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ErrorOut"},
                                "example": {"detail": f"request body over {limit} bytes"},
                            }
                        },
                    }
        return document

    app.openapi = openapi  # type: ignore[method-assign]
