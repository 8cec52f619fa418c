"""What every list the API serves shares: page bounds, a page of results, ids read from user input."""

from __future__ import annotations

from dataclasses import dataclass

from beanie import PydanticObjectId
from beanie.odm.queries.find import FindMany
from pydantic import BaseModel

MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Page[T]:
    items: list[T]
    total: int
    page: int
    page_size: int


def bounds(page: int, page_size: int) -> tuple[int, int]:
    """`page` from 1 and `page_size` from 1 to MAX_PAGE_SIZE."""
    return max(1, page), max(1, min(page_size, MAX_PAGE_SIZE))


async def page_of[T: BaseModel](found: FindMany[T], *, total: int, page: int, page_size: int) -> Page[T]:
    """The `page`-th run of `page_size` results of a sorted query (bounds already applied)."""
    items = await found.skip((page - 1) * page_size).limit(page_size).to_list()
    return Page(items=items, total=total, page=page, page_size=page_size)


def object_id(value: str) -> PydanticObjectId | None:
    """The ObjectId a string from a path or a filter names, or None when it names none."""
    try:
        return PydanticObjectId(value)
    except Exception:  # bson raises InvalidId or TypeError depending on the input
        return None
