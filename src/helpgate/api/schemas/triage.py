"""Triage quality as the agents judged it (GET /api/triage/quality)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from helpgate.api import examples
from helpgate.tickets.triage_quality import Kept, Quality


class KeptOut(BaseModel):
    reviewed: int = Field(description="tickets staff changed (category, priority or skills) or solved as triaged")
    corrected: int = Field(description="of those, the ones staff changed")
    category_kept: int = Field(description="the category triage gave stayed")
    priority_kept: int = Field(description="the priority triage gave stayed")

    @classmethod
    def of(cls, kept: Kept) -> KeptOut:
        return cls(
            reviewed=kept.reviewed,
            corrected=kept.corrected,
            category_kept=kept.category_kept,
            priority_kept=kept.priority_kept,
        )


class WeekOut(KeptOut):
    source: str = Field(description="gemini, openai or heuristic (the triage's recorded source)")
    week: str = Field(description="ISO week of the review, such as 2026-W49")


class TriageQualityOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.TRIAGE_QUALITY]})
    since: datetime
    until: datetime
    by_source: dict[str, KeptOut]
    weeks: list[WeekOut] = Field(description="per source and week, oldest week first")
    confusion: dict[str, dict[str, int]] = Field(
        description="categories: what triage said -> what staff left -> tickets (`none`: no category)"
    )

    @classmethod
    def of(cls, quality: Quality) -> TriageQualityOut:
        return cls(
            since=quality.since,
            until=quality.until,
            by_source={source: KeptOut.of(kept) for source, kept in quality.by_source.items()},
            weeks=[
                WeekOut(source=source, week=week, **KeptOut.of(kept).model_dump())
                for (source, week), kept in quality.weeks.items()
            ],
            confusion=quality.confusion,
        )
