"""Keyword triage: what stands in for the AI when none is configured or it keeps failing.

Deterministic and free of I/O. The policy is the category catalog's keywords (the admin's; tickets/categories.py
has the defaults) and the tables below (priority, sentiment and language); the functions only count whole-word,
case-insensitive matches against them. The notes name the keywords that decided, so an agent can see why a
ticket landed where it did.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cache

from helpgate.tickets.categories import CategoryEntry
from helpgate.workflows.ai.triage import (
    DEFAULT_CATEGORIES,
    FALLBACK_CATEGORY,
    Priority,
    Sentiment,
    SkillInfo,
    TicketText,
    Triage,
    clamp,
)

# fmt: off
HIGH_PRIORITY = ("urgent", "urgently", "outage", "down", "asap", "security", "breach", "data loss", "lost data",
                 "cannot log in for everyone", "nobody can log in", "legal", "lawyer", "production", "critical",
                 "emergency", "dringend", "urgente",
                 # danger and whole teams stopped (issue 18's cues)
                 "on fire", "burning", "smoke", "everyone", "all users", "whole team", "cannot work", "can't work",
                 "data lost", "deadline", "hacked", "en panne", "feuer", "brennt")
LOW_PRIORITY = ("question", "feedback", "thanks", "thank you", "feature request", "suggestion", "just wondering",
                "no rush", "when you have time", "not urgent", "no hurry")
# "not urgent", "no emergency": a high cue said not to apply is no cue.
NEGATED_HIGH = re.compile(
    r"\b(?:not|no|nothing|isn't|is not|wasn't|without)\s+(?:\w+\s+)?(?:urgent|critical|emergency|asap)\b",
    re.IGNORECASE,
)

NEGATIVE = ("angry", "unacceptable", "terrible", "still not", "frustrated", "frustrating", "disappointed",
            "ridiculous", "worst", "furious", "awful")
POSITIVE = ("thanks", "thank you", "great", "love", "awesome", "excellent", "appreciate", "danke", "merci", "gracias")

# A few of each language's most common words; the language with the most hits wins, English when none do.
LANGUAGE_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("en", ("the", "and", "is", "my", "you", "please", "not", "with", "have", "this")),
    ("de", ("der", "die", "und", "ist", "nicht", "ich", "mein", "meine", "bitte", "mit", "wir", "das")),
    ("fr", ("le", "la", "les", "et", "est", "je", "mon", "ma", "pas", "vous", "merci", "une", "avec")),
    ("es", ("el", "los", "las", "y", "es", "mi", "por", "favor", "gracias", "una", "con", "pero", "que")),
    ("pt", ("não", "obrigado", "você", "meu", "minha", "está", "com", "uma")),
)
SCRIPT_LANGUAGES: tuple[tuple[str, str], ...] = (
    ("ja", r"[\u3040-\u30ff]"),  # hiragana, katakana: Japanese even when kanji dominate
    ("ko", r"[\uac00-\ud7af]"),
    ("zh", r"[\u4e00-\u9fff]"),
    ("ru", r"[\u0400-\u04ff]"),
    ("ar", r"[\u0600-\u06ff]"),
)
STOPWORDS = frozenset(("with", "that", "from", "this", "your", "have", "about", "into", "their", "they", "them",
                       "when", "what", "which", "other", "such", "also", "more", "than", "then", "issues",
                       "questions", "anything", "everything", "related", "including", "problems"))
# fmt: on

MIN_DESCRIPTION_WORD = 4
SUMMARY_LIMIT = 200
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[\u3002\uff01\uff1f])|\n\s*\n")  # CJK stops need no space
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


@cache
def _pattern(keyword: str) -> re.Pattern[str]:
    # Whole words; a trailing "s" lets "invoice" also match "invoices".
    return re.compile(rf"(?<!\w){re.escape(keyword)}s?(?!\w)", re.IGNORECASE)


def _hits(text: str, keywords: Iterable[str]) -> list[str]:
    return [keyword for keyword in keywords if _pattern(keyword).search(text)]


def category_of(text: str, categories: Sequence[CategoryEntry] = DEFAULT_CATEGORIES) -> tuple[str, list[str]]:
    """The category with the most keyword hits (the catalog's order breaks ties), else "other"."""
    best, best_hits = FALLBACK_CATEGORY, list[str]()
    for entry in categories:
        hits = _hits(text, entry.keywords)
        if len(hits) > len(best_hits):
            best, best_hits = entry.name, hits
    return best, best_hits


def priority_of(text: str) -> tuple[Priority, list[str]]:
    if high := _hits(NEGATED_HIGH.sub(" ", text), HIGH_PRIORITY):
        return "high", high
    if low := _hits(text, LOW_PRIORITY):
        return "low", low
    return "medium", []


def sentiment_of(text: str) -> Sentiment:
    if _hits(text, NEGATIVE):
        return "negative"
    if _hits(text, POSITIVE):
        return "positive"
    return "neutral"


def language_of(text: str) -> str:
    for language, script in SCRIPT_LANGUAGES:
        if re.search(script, text):
            return language
    words = [word.lower() for word in _WORD.findall(text)]
    scores = [(sum(word in common for word in words), language) for language, common in LANGUAGE_WORDS]
    score, language = max(scores, key=lambda pair: pair[0])  # max keeps the first at a tie: English
    return language if score else "en"


def skills_of(text: str, catalog: Sequence[SkillInfo]) -> list[tuple[str, str]]:
    """(skill, the word that matched) for catalog entries whose name or a description word occurs in the text."""
    found: list[tuple[str, str]] = []
    for skill in catalog:
        words = [skill.name] + [
            word
            for word in _WORD.findall(skill.description)
            if len(word) >= MIN_DESCRIPTION_WORD and word.lower() not in STOPWORDS
        ]
        if hits := _hits(text, words):
            found.append((skill.name, hits[0]))
    return found


def summary_of(ticket: TicketText) -> str:
    """The body's first sentences that fit in 200 characters (the subject when the body is empty)."""
    text = ticket.body.strip() or ticket.subject
    summary = ""
    for sentence in _SENTENCE_END.split(text):
        candidate = f"{summary} {' '.join(sentence.split())}".strip()
        if len(candidate) > SUMMARY_LIMIT:
            break
        summary = candidate
    if summary:
        return summary
    flat = " ".join(text.split())
    return flat[: SUMMARY_LIMIT - 1].rsplit(" ", 1)[0] + "…"


def _quoted(words: Iterable[str]) -> str:
    return ", ".join(f"'{word}'" for word in words)


def heuristic_triage(
    ticket: TicketText, catalog: Sequence[SkillInfo], categories: Sequence[CategoryEntry] = DEFAULT_CATEGORIES
) -> Triage:
    """Triage by keyword tables (the categories' keywords from the catalog); the notes say which keywords decided."""
    text = f"{ticket.subject}\n{ticket.body}"
    category, category_hits = category_of(text, categories)
    priority, priority_hits = priority_of(text)
    skills = skills_of(text, catalog)
    notes = ["Keyword triage (no AI)."]
    notes.append(f"Category {category} from {_quoted(category_hits)}." if category_hits else "No category keyword.")
    if priority_hits:
        notes.append(f"Priority {priority} from {_quoted(priority_hits)}.")
    if skills:
        notes.append("Skills: " + ", ".join(f"{name} ('{word}')" for name, word in skills) + ".")
    raw = Triage(
        category=category,
        priority=priority,
        skills=[name for name, _ in skills],
        summary=summary_of(ticket),
        helpful_notes=" ".join(notes),
        language=language_of(text),
        sentiment=sentiment_of(text),
    )
    return clamp(raw, catalog, categories)
