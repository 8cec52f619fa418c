"""Reading the console's form posts (application/x-www-form-urlencoded, bounded), without a multipart parser."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import Request
from pydantic import BaseModel, ValidationError

from helpgate.console.session import CSRF_FIELD, Viewer, check_csrf
from helpgate.core.errors import InvalidInput, PayloadTooLarge

MAX_FORM_BYTES = 256 * 1024  # a reply's text with room to spare
MAX_FIELDS = 2 * 200 + 20  # the skill catalog's rows (name and description) and then some
_FORM = "application/x-www-form-urlencoded"


async def read_fields(request: Request, *, limit: int = MAX_FORM_BYTES) -> dict[str, list[str]]:
    """The form's fields with every value each was sent with; InvalidInput when the body is not a url-encoded
    form, PayloadTooLarge past `limit`."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != _FORM:
        raise InvalidInput(f"send the form as {_FORM}")
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLarge(f"a form is at most {limit} bytes")
    try:
        return parse_qs(body.decode(), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("the form cannot be read") from None


async def read_form(request: Request, *, limit: int = MAX_FORM_BYTES) -> dict[str, str]:
    """The form's fields, each its first value."""
    return {name: values[0] for name, values in (await read_fields(request, limit=limit)).items()}


async def posted(request: Request, viewer: Viewer) -> dict[str, list[str]]:
    """A form that changes something: its fields, once its CSRF token and origin are checked (Forbidden else)."""
    fields = await read_fields(request)
    given = fields.pop(CSRF_FIELD, None)
    check_csrf(request, viewer, given[0] if given else None)
    return fields


def first(fields: dict[str, list[str]], name: str, default: str = "") -> str:
    return (fields.get(name) or [default])[0]


def valid[M: BaseModel](model: type[M], values: dict[str, object]) -> M:
    """The API's request schema applied to a form (one set of rules); InvalidInput naming the first problem."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        first = error.errors(include_url=False, include_context=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidInput(f"{where}: {first['msg']}" if where else str(first["msg"])) from None
