"""Triage quality as the agents judged it (GET /api/triage/quality)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from helpgate.api import examples
from helpgate.tickets.triage_quality import Kept, Quality
from helpgate.workflows.ai.learning import State


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
    source: str = Field(description="gemini, openai, learned or heuristic (the triage's recorded source)")
    week: str = Field(description="ISO week of the review, such as 2026-W49")


class LearnedOut(BaseModel):
    """The learned triage: when it was trained, on how many reviewed tickets, and how it did on the ones held out
    against the keyword tables on the same tickets; it answers the fields in `answers` where the keyword tables
    would (no AI configured, or the AI failed)."""

    trained_at: datetime | None = Field(description="null: not trained yet (fewer than 20 reviewed tickets)")
    examples: int = Field(description="reviewed tickets it was trained on")
    held_out: int = Field(description="of those, the ones held out to judge it (every ticket number divisible by 4)")
    category_accuracy: float | None
    keywords_category_accuracy: float | None
    priority_accuracy: float | None
    keywords_priority_accuracy: float | None
    answers: list[str] = Field(description="the fields it answers (`category`, `priority`): where it beat the keywords")
    next_training_at: datetime | None = Field(description="when the retraining chain trains next")

    @classmethod
    def of(cls, state: State) -> LearnedOut:
        model = state.model
        return cls(
            trained_at=model.trained_at if model else None,
            examples=model.examples if model else 0,
            held_out=model.held_out if model else 0,
            category_accuracy=model.category_accuracy if model else None,
            keywords_category_accuracy=model.keywords_category_accuracy if model else None,
            priority_accuracy=model.priority_accuracy if model else None,
            keywords_priority_accuracy=model.keywords_priority_accuracy if model else None,
            answers=list(model.answers) if model else [],
            next_training_at=state.next_training_at,
        )


class TriageQualityOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.TRIAGE_QUALITY]})
    since: datetime
    until: datetime
    by_source: dict[str, KeptOut]
    weeks: list[WeekOut] = Field(description="per source and week, oldest week first")
    confusion: dict[str, dict[str, int]] = Field(
        description="categories: what triage said -> what staff left -> tickets (`none`: no category)"
    )
    learned: LearnedOut | None = Field(default=None, description="the learned triage's state")

    @classmethod
    def of(cls, quality: Quality, learned: State | None = None) -> TriageQualityOut:
        return cls(
            since=quality.since,
            until=quality.until,
            by_source={source: KeptOut.of(kept) for source, kept in quality.by_source.items()},
            weeks=[
                WeekOut(source=source, week=week, **KeptOut.of(kept).model_dump())
                for (source, week), kept in quality.weeks.items()
            ],
            confusion=quality.confusion,
            learned=LearnedOut.of(learned) if learned is not None else None,
        )
