"""The names of catalog entries (skills, categories): what admins may call them, as stored."""

from __future__ import annotations

import re

from helpgate.core.errors import InvalidInput

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")


def catalog_name(name: str, *, what: str) -> str:
    """`name` as stored: lower-case, 1-40 of a-z 0-9 _ . -; InvalidInput naming `what` otherwise."""
    candidate = name.strip().lower()
    if not _NAME.fullmatch(candidate):
        raise InvalidInput(f"invalid {what} name {name!r}: use 1-40 of a-z, 0-9, '_', '.', '-'")
    return candidate
