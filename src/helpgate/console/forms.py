"""Reading the console's form posts: url-encoded (bounded here), or multipart when they carry files (a reply's
attachments; bounded by the body limit middleware and Starlette's parser, python-multipart)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.formparsers import MultiPartException

from helpgate.api.deps import media_type, read_urlencoded
from helpgate.console.session import CSRF_FIELD, Viewer, check_csrf, same_origin
from helpgate.core.errors import InvalidInput

MAX_FORM_BYTES = 256 * 1024  # a reply's text with room to spare
MAX_FIELDS = 2 * 200 + 20  # the skill catalog's rows (name and description) and then some
_MULTIPART = "multipart/form-data"


async def read_fields(request: Request, *, limit: int = MAX_FORM_BYTES) -> dict[str, list[str]]:
    """The form's fields with every value each was sent with; InvalidInput when the body is not a url-encoded
    form, PayloadTooLarge past `limit` (the API's parser: api/deps.py)."""
    return await read_urlencoded(request, what="form", limit=limit, max_fields=MAX_FIELDS)


async def read_form(request: Request, *, limit: int = MAX_FORM_BYTES) -> dict[str, str]:
    """The form's fields, each its first value."""
    return {name: values[0] for name, values in (await read_fields(request, limit=limit)).items()}


async def posted(request: Request, viewer: Viewer) -> dict[str, list[str]]:
    """A form that changes something: its fields, once its CSRF token and origin are checked (Forbidden else)."""
    fields = await read_fields(request)
    given = fields.pop(CSRF_FIELD, None)
    check_csrf(request, viewer, given[0] if given else None)
    return fields


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes


async def posted_with_files(
    request: Request, viewer: Viewer, *, max_files: int
) -> tuple[dict[str, list[str]], list[Upload]]:
    """A form that changes something and may carry files (multipart/form-data): its fields and files, once its
    CSRF token and origin are checked. A url-encoded form has no files. A file input left empty is no file."""
    if media_type(request) != _MULTIPART:
        return await posted(request, viewer), []
    same_origin(request)  # before the body is read
    fields: dict[str, list[str]] = {}
    uploads: list[Upload] = []
    try:
        async with request.form(max_files=max_files, max_fields=MAX_FIELDS) as form:
            for name, value in form.multi_items():
                if isinstance(value, str):
                    fields.setdefault(name, []).append(value)
                elif value.filename:
                    kind = value.content_type or "application/octet-stream"
                    uploads.append(Upload(filename=value.filename, content_type=kind, data=await value.read()))
    except MultiPartException as error:
        raise InvalidInput(f"the form cannot be read: {error.message}") from None
    given = fields.pop(CSRF_FIELD, None)
    check_csrf(request, viewer, given[0] if given else None)
    return fields, uploads


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
