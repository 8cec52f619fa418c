"""The category catalog's bodies (GET and PUT /api/categories)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from helpgate.api import examples
from helpgate.models import Category
from helpgate.tickets.categories import MAX_KEYWORDS

Keyword = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]


class CategoryIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.CATEGORY]})
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = Field(
        default="", description="what belongs here and what tells it apart from its neighbours (the AI reads it)"
    )
    keywords: list[Keyword] = Field(
        default_factory=list, max_length=MAX_KEYWORDS, description="words that point here (the keyword triage)"
    )


class CategoryOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.CATEGORY]})
    name: str
    description: str
    keywords: list[str]

    @classmethod
    def of(cls, category: Category) -> CategoryOut:
        return cls(name=category.name, description=category.description, keywords=category.keywords)
