"""The shared vocabulary of triage: what goes in, what comes out, and the rules any answer is held to.

`Triage` is also the model's structured-output schema. Whatever produced it (Gemini or an OpenAI-compatible model,
possibly steered by text in the ticket, or the heuristic), `clamp` enforces the rules before anything is stored: a
known category, skills only from the admin's catalog, plain-text summary and notes of bounded length, a two-letter
language.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from helpgate.tickets import categories
from helpgate.tickets.categories import CategoryEntry

#: The catalog a store starts with; triage is given the store's own (tickets/categories.py).
DEFAULT_CATEGORIES: tuple[CategoryEntry, ...] = categories.DEFAULTS

FALLBACK_CATEGORY = categories.FALLBACK  # always allowed: where a ticket goes when nothing fits
UNKNOWN_LANGUAGE = "und"  # ISO 639-2 "undetermined"
MAX_SKILLS = 5
MAX_SUMMARY = 500
MAX_NOTES = 2_000
MAX_BODY_CHARS = 8_000  # what triage reads of a ticket's first message

# Plain aliases, not `type` statements: pydantic inlines them, so the schema sent to the model has no $defs.
Priority = Literal["low", "medium", "high"]
Sentiment = Literal["positive", "neutral", "negative"]
AiSource = Literal["gemini", "openai"]  # the AI providers (`openai`: any OpenAI-compatible endpoint)
# Who made a triage, as recorded on the ticket: an AI, the classifier learned from the agents, or the keyword tables
Source = Literal["gemini", "openai", "learned", "heuristic"]


class Triage(BaseModel):
    """One ticket's classification; the JSON schema the model answers in."""

    category: str
    priority: Priority
    skills: list[str]
    summary: str
    helpful_notes: str
    language: str
    sentiment: Sentiment


@dataclass(frozen=True)
class SkillInfo:
    """An entry of the admin's skill catalog: triage may only name skills from it."""

    name: str
    description: str = ""


@dataclass(frozen=True)
class TicketText:
    """What triage reads of a ticket; `body` is the plain text of its first message."""

    number: int
    subject: str
    body: str
    requester: str


class TriageOutcome(BaseModel):
    """A triage and how it was reached, to be recorded on the ticket."""

    triage: Triage
    source: Source
    model: str | None
    input_tokens: int | None
    output_tokens: int | None
    latency_ms: int
    attempts: int  # calls to the AI made, 0 when it was not asked
    fallback_reason: str | None


_TAG = re.compile(r"<[^>]*>")
# C0/C1 controls and the invisible format characters used to hide text (zero-width, bidi overrides)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_BLANK_RUN = re.compile(r"[ \t]+")
_LANGUAGE = re.compile(r"[a-z]{2}")


def plain_text(text: str, limit: int, *, single_line: bool = False) -> str:
    """Text with HTML tags and control characters removed, whitespace tidied, at most `limit` characters."""
    text = _CONTROL.sub("", _TAG.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n")))
    if single_line:
        text = " ".join(text.split())
    else:
        text = "\n".join(_BLANK_RUN.sub(" ", line).strip() for line in text.split("\n"))
        text = re.sub(r"\n{3,}", "\n\n", text).strip()
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def clamp_skills(skills: Sequence[str], catalog: Sequence[SkillInfo]) -> list[str]:
    """Skills named in the catalog (case-insensitive, catalog spelling kept), deduplicated, at most five."""
    by_key = {skill.name.casefold(): skill.name for skill in catalog}
    kept: list[str] = []
    for skill in skills:
        name = by_key.get(skill.strip().casefold())
        if name is not None and name not in kept:
            kept.append(name)
    return kept[:MAX_SKILLS]


def clamp_language(language: str) -> str:
    """The primary subtag as a lower-case ISO 639-1 code ("EN-us" → "en"), else "und"."""
    primary = language.strip().lower().replace("_", "-").split("-", 1)[0]
    return primary if _LANGUAGE.fullmatch(primary) else UNKNOWN_LANGUAGE


def clamp(
    raw: Triage, catalog: Sequence[SkillInfo], categories: Sequence[CategoryEntry] = DEFAULT_CATEGORIES
) -> Triage:
    """`raw` held to the rules whatever produced it: a category not in the catalog becomes "other", and so on."""
    category = raw.category.strip().lower()
    known = {entry.name for entry in categories}
    return Triage(
        category=category if category in known else FALLBACK_CATEGORY,
        priority=raw.priority,
        skills=clamp_skills(raw.skills, catalog),
        summary=plain_text(raw.summary, MAX_SUMMARY, single_line=True),
        helpful_notes=plain_text(raw.helpful_notes, MAX_NOTES),
        language=clamp_language(raw.language),
        sentiment=raw.sentiment,
    )
