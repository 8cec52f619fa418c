"""Reading the console's form posts (application/x-www-form-urlencoded, bounded), without a multipart parser."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import Request
from pydantic import BaseModel, ValidationError

from helpgate.core.errors import InvalidInput, PayloadTooLarge

MAX_FORM_BYTES = 256 * 1024  # a reply's text with room to spare
_FORM = "application/x-www-form-urlencoded"


async def read_form(request: Request, *, limit: int = MAX_FORM_BYTES) -> dict[str, str]:
    """The form's fields, each its first value; InvalidInput when the body is not a url-encoded form."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != _FORM:
        raise InvalidInput(f"send the form as {_FORM}")
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLarge(f"a form is at most {limit} bytes")
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("the form cannot be read") from None
    return {name: values[0] for name, values in fields.items()}


def valid[M: BaseModel](model: type[M], values: dict[str, object]) -> M:
    """The API's request schema applied to a form (one set of rules); InvalidInput naming the first problem."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        first = error.errors(include_url=False, include_context=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidInput(f"{where}: {first['msg']}" if where else str(first["msg"])) from None
