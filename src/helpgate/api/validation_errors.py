"""422 answers for requests that do not fit the schema, in the documented form (`ErrorOut`: `{"detail": [...]}`).

FastAPI's own answer echoes each problem's `input` as it came, which breaks on what JSON can carry but UTF-8
and JSON output cannot: a lone surrogate (`"\\ud800"`) failed to encode, a value nested thousands deep
exhausted the recursion limit, `NaN` is no JSON; each was a 500 with a long traceback (issue 14, finding 12).
Here the problems are copied into plain JSON values first: text with its lone surrogates replaced, values cut
off below MAX_DEPTH levels, numbers JSON cannot write given as text.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)

_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_DEPTH = 8  # levels of a value shown back in `input` or `ctx`; what lies deeper is shown as null
TOO_DEEP = {
    "type": "json_invalid",
    "loc": ["body"],
    "msg": "JSON decode error",
    "input": None,
    "ctx": {"error": "nested too deeply"},
}


def _text(value: str) -> str:
    """The text with each lone surrogate (which UTF-8 cannot encode) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", value)


def shown(value: object, depth: int = 0) -> object:
    """`value` as a JSON value that always encodes: the answer never fails on what the client sent."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _text(value)
    if depth >= MAX_DEPTH:
        return None
    if isinstance(value, Mapping):
        return {_text(str(key)): shown(item, depth + 1) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [shown(item, depth + 1) for item in value]
    return _text(str(value))


def problems(error: RequestValidationError) -> list[dict[str, object]]:
    """The problems as `FieldProblem`s: type, loc, msg, input, and ctx when there is one."""
    found: list[dict[str, object]] = []
    for problem in error.errors():
        item: dict[str, object] = {
            "type": _text(str(problem.get("type", ""))),
            "loc": [part if isinstance(part, int) else _text(str(part)) for part in problem.get("loc", ())],
            "msg": _text(str(problem.get("msg", ""))),
            "input": shown(problem.get("input")),
        }
        if isinstance(problem.get("ctx"), Mapping):
            item["ctx"] = shown(problem["ctx"])
        found.append(item)
    return found


async def invalid_request(request: Request, error: Exception) -> Response:
    """422 with the problems; one short log line (never the input, which may be large or hold secrets)."""
    assert isinstance(error, RequestValidationError)
    found = problems(error)
    first = found[0] if found else {}
    loc = first.get("loc")
    where = ".".join(str(part) for part in loc) if isinstance(loc, list) else ""
    log.info(
        "api.invalid_request path=%s problems=%d first=%s at=%s", request.url.path, len(found), first.get("type"), where
    )
    return JSONResponse({"detail": found}, status_code=422)


async def unparseable_body(request: Request, error: Exception) -> Response:
    """FastAPI answers 400 when the JSON parser fails other than on syntax: past Python's recursion limit
    (tens of thousands of levels), that is JSON nested too deeply, a 422 like any other invalid JSON."""
    assert isinstance(error, HTTPException)
    if error.status_code == 400 and isinstance(error.__cause__, RecursionError):
        log.info("api.invalid_request path=%s problems=1 first=json_invalid at=body: too deep", request.url.path)
        return JSONResponse({"detail": [TOO_DEEP]}, status_code=422)
    return await http_exception_handler(request, error)
