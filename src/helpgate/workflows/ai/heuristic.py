"""Keyword triage: what stands in for the AI when none is configured or it keeps failing.

Deterministic and free of I/O. The policy is the category catalog's keywords (the admin's; tickets/categories.py
has the defaults) and the tables below (priority, sentiment and language); the functions only count whole-word,
case-insensitive matches against them. The notes name the keywords that decided, so an agent can see why a
ticket landed where it did.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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
HIGH_PRIORITY = ("urgent", "urgently", "asap", "as soon as possible", "emergency", "critical", "outage", "down",
                 "right now", "hurry", "breach", "data loss", "lost data", "data lost", "hacked", "compromised",
                 "cannot log in for everyone", "nobody can", "no one can", "all agents", "all users", "all our",
                 "everyone in", "everyone at", "for everyone", "whole team", "entire team", "cannot work", "can't work",
                 "legal proceedings",
                 "lawyer", "subpoena", "police", "production is down", "production line", "deadline", "losing",
                 "suspended", "chaos", "vulnerability", "security issue", "exposed", "sensitive", "dispute",
                 # danger (issue 18's cues)
                 "on fire", "burning", "smoke",
                 "dringend", "eilig", "sofort", "so schnell wie möglich", "ausgefallen", "feuer", "brennt", "gehackt",
                 "urgence", "au plus vite", "rapidement", "en panne", "bloquée", "piraté",
                 "urgente", "urgencia", "lo antes posible", "cuanto antes", "caído", "hackeado",
                 "spoed", "zo snel mogelijk", "zit stil", "ligt plat", "help!",
                 "o mais rápido possível", "o quanto antes", "invadida", "invadido", "quanto prima")
LOW_PRIORITY = ("quick question", "just wondering", "no rush", "when you have time", "not urgent", "no hurry",
                "small thing", "not a big deal", "just a suggestion", "just curious", "out of curiosity",
                "possible to", "is that possible", "é possível", "ist es möglich", "est-il possible", "es posible",
                "is het mogelijk", "do you", "is there", "how do i", "how can i", "where do i", "where can i",
                "is there a way", "is it possible", "can i",
                "keine eile", "nicht dringend", "pas urgent", "sin prisa", "no es urgente", "geen haast",
                "niet dringend", "sem pressa")
# Something does not work: a question or wish that says so is no longer a calm one.
TROUBLE = ("cannot", "can't", "not working", "doesn't work", "does not work", "fails", "failed", "error", "blocked",
           "blocks", "still", "stopped", "won't", "unable",
           "funktioniert nicht", "nicht mehr", "kann nicht", "blockiert", "ne fonctionne pas", "ne marche pas",
           "impossible", "bloque", "no funciona", "no puedo", "bloquea", "werkt niet", "kan niet", "blokkeert",
           "não funciona", "não consigo", "bloqueia")
# Categories that are rarely urgent (questions, wishes, opinions): low unless a cue or a complaint says otherwise.
QUIET_CATEGORIES = frozenset(("technical", "sales", "feedback", "feature-request", "other"))
# "not urgent", "no emergency": a high cue said not to apply is no cue; nor is an auto-reply's "for urgent matters".
NEGATED_HIGH = re.compile(
    r"\b(?:not|no|nothing|isn't|is not|wasn't|without|nicht|kein|keine|pas|niet|geen|no es|não é)\s+(?:\w+\s+)?"
    r"(?:urgent|critical|emergency|asap|dringend|urgente|eilig|spoed)\b"
    r"|\b(?:for|in)\s+urgent\s+(?:matters|cases|questions|issues)\b|\bin\s+dringenden\s+fällen\b",
    re.IGNORECASE,
)

NEGATIVE = ("angry", "unacceptable", "terrible", "still not", "frustrated", "frustrating", "disappointed",
            "ridiculous", "worst", "furious", "awful", "useless", "rude", "not professional", "complaint",
            "enttäuscht", "unverschämt", "inakzeptabel", "déçu", "inacceptable", "inaceptable", "maleducado",
            "mala experiencia", "queja", "teleurgesteld", "klacht", "niet professioneel", "insatisfação",
            "reclamação", "inaceitável")
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
    # Whole words; a trailing "s" lets "invoice" also match "invoices", a trailing "*" any ending ("refund*").
    if keyword.endswith("*"):
        return re.compile(rf"(?<!\w){re.escape(keyword[:-1])}", re.IGNORECASE)
    return re.compile(rf"(?<!\w){re.escape(keyword)}s?(?!\w)", re.IGNORECASE)


def _hits(text: str, keywords: Iterable[str]) -> list[str]:
    return [keyword for keyword in keywords if _pattern(keyword).search(text)]


def _words(text: str, keywords: Iterable[str]) -> list[str]:
    """The words of `text` the keywords matched ("refund*" → "refunded"), for the notes."""
    return list(dict.fromkeys(match.group(0).lower() for word in keywords if (match := _pattern(word).search(text))))


def _scored(subject: str, body: str, categories: Sequence[CategoryEntry]) -> list[tuple[str, list[str], int]]:
    """(category, its keywords found, score) per catalog entry: a keyword in the subject counts twice."""
    scored = []
    for entry in categories:
        hits = _hits(f"{subject}\n{body}", entry.keywords)
        scored.append((entry.name, hits, len(hits) + len(_hits(subject, hits))))
    return scored


def category_of(
    subject: str, body: str, categories: Sequence[CategoryEntry] = DEFAULT_CATEGORIES
) -> tuple[str, list[str]]:
    """The category whose keywords score most, a keyword in the subject counting twice (the catalog's order breaks
    ties), else "other"."""
    return _best(_scored(subject, body, categories))


def _best(scored: list[tuple[str, list[str], int]]) -> tuple[str, list[str]]:
    best, best_hits, best_score = FALLBACK_CATEGORY, list[str](), 0
    for name, hits, score in scored:
        if score > best_score:
            best, best_hits, best_score = name, hits, score
    return best, best_hits


def priority_of(text: str, category: str = FALLBACK_CATEGORY) -> tuple[Priority, list[str]]:
    """High on an urgency cue (not negated), low on a calm one; else by category: a question, wish or opinion
    (QUIET_CATEGORIES) is low unless it complains, anything else medium."""
    if high := _hits(NEGATED_HIGH.sub(" ", text), HIGH_PRIORITY):
        return "high", high
    if low := _hits(text, LOW_PRIORITY):
        return "low", low
    if category in QUIET_CATEGORIES and sentiment_of(text) != "negative" and not _hits(text, TROUBLE):
        return "low", []
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


@dataclass(frozen=True)
class Reading:
    """What the keyword tables find in a ticket, as numbers: the learned triage reads them beside the words."""

    scores: dict[str, int]  # category -> its keyword score
    category: str
    priority: Priority
    high: int  # urgency cues, not negated
    low: int  # calm cues
    trouble: int
    negative: bool


def reading(subject: str, body: str, categories: Sequence[CategoryEntry] = DEFAULT_CATEGORIES) -> Reading:
    text = f"{subject}\n{body}"
    scored = _scored(subject, body, categories)  # once: the scores and the category they give
    category, _hits_found = _best(scored)
    return Reading(
        scores={name: score for name, _found, score in scored},
        category=category,
        priority=priority_of(text, category)[0],
        high=len(_hits(NEGATED_HIGH.sub(" ", text), HIGH_PRIORITY)),
        low=len(_hits(text, LOW_PRIORITY)),
        trouble=len(_hits(text, TROUBLE)),
        negative=sentiment_of(text) == "negative",
    )


def _quoted(words: Iterable[str]) -> str:
    return ", ".join(f"'{word}'" for word in words)


def heuristic_triage(
    ticket: TicketText, catalog: Sequence[SkillInfo], categories: Sequence[CategoryEntry] = DEFAULT_CATEGORIES
) -> Triage:
    """Triage by keyword tables (the categories' keywords from the catalog); the notes say which keywords decided."""
    text = f"{ticket.subject}\n{ticket.body}"
    category, category_hits = category_of(ticket.subject, ticket.body, categories)
    priority, priority_hits = priority_of(text, category)
    skills = skills_of(text, catalog)
    notes = ["Keyword triage (no AI)."]
    if category_hits:
        notes.append(f"Category {category} from {_quoted(_words(text, category_hits))}.")
    else:
        notes.append("No category keyword.")
    if priority_hits:
        notes.append(f"Priority {priority} from {_quoted(_words(text, priority_hits))}.")
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
