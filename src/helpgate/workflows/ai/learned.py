"""The learned triage: a linear text classifier for category and priority, trained on the tickets staff reviewed.

Features: TF-IDF of the words and of the 3- and 4-letter pieces of each word (the subject counted twice, so short
mails and inflected languages still share features), beside what the keyword tables read (heuristic.reading: each
category's keyword score, the keyword triage's answer, its priority cues). A linear SVM (scikit-learn's LinearSVC)
per field weighs them: with few reviews it leans on the keywords, with more on the words of this installation.

`learn` keeps every fourth reviewed ticket (by number) out, trains on the rest, and scores that classifier and the
keyword tables on the tickets kept out; the classifier answers a field only where it got more of them right, and
only with at least MIN_HELD_OUT to judge by. It is then trained again on all of them. A trained classifier is plain
data (`to_stored` / `from_stored`): vocabulary, idf and weights, scored with numpy alone; scikit-learn is imported
only to train. CPU-bound: callers run `learn` in a thread.
"""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from helpgate.tickets.categories import CategoryEntry
from helpgate.workflows.ai.heuristic import Reading, heuristic_triage, reading
from helpgate.workflows.ai.triage import FALLBACK_CATEGORY, SkillInfo, TicketText, Triage, clamp
from helpgate.workflows.models.triage_model import Head, Trained

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

FEATURES = "words+chars3-4+keywords/1"  # change it when `terms` or `_keyword_features` change
FIELDS = ("category", "priority")
PRIORITIES = ("low", "medium", "high")
CHARS = (3, 4)
MAX_TERMS = 20_000  # the most frequent terms kept: bounds the stored model (~1 MB)
KEYWORD_WEIGHT = 1.0  # the keyword features' scale beside the unit-length TF-IDF vector
HELD_OUT_EVERY = 4  # tickets whose number is a multiple of this are held out
MIN_EXAMPLES = 20  # fewer reviewed tickets: nothing is trained
MIN_HELD_OUT = 10  # fewer held out: too few to judge by, the keyword tables keep answering
_TOKEN = re.compile(r"\w+")
_DTYPE = np.dtype("<f4")


@dataclass(frozen=True)
class Example:
    """A reviewed ticket: its text, and the category and priority staff left on it."""

    number: int
    subject: str
    body: str
    category: str
    priority: str


def terms(subject: str, body: str) -> list[str]:
    """The words (w:) and the 3- and 4-letter pieces of each word, padded with spaces (c:), of a ticket."""
    words = _TOKEN.findall(f"{subject}\n{subject}\n{body}".lower())
    found = [f"w:{word}" for word in words]
    for word in words:
        padded = f" {word} "
        for size in CHARS:
            found.extend(f"c:{padded[at : at + size]}" for at in range(len(padded) - size + 1))
    return found


def _keyword_features(read: Reading, names: Sequence[str]) -> list[float]:
    return [
        *(float(read.scores.get(name, 0)) for name in names),
        *(float(read.category == name) for name in names),
        *(float(read.priority == priority) for priority in PRIORITIES),
        float(read.high),
        float(read.low),
        float(read.trouble),
        float(read.negative),
    ]


@dataclass(frozen=True)
class Fitted:
    """One field's classes and their scores: weights (classes by features) · x + intercept; the largest wins."""

    classes: tuple[str, ...]
    weights: NDArray[np.float32]
    intercept: NDArray[np.float32]


@dataclass(frozen=True)
class Classifier:
    """A trained classifier as numbers: scores = weights · [tf-idf of the terms, keyword features] + intercept."""

    terms: dict[str, int]
    idf: NDArray[np.float32]
    names: tuple[str, ...]  # the catalog the keyword features follow
    heads: dict[str, Fitted]

    def predict(self, subject: str, body: str, categories: Sequence[CategoryEntry]) -> dict[str, str]:
        """Each field's class for a ticket (`categories`: the catalog now, for the keyword features)."""
        counts = Counter(index for term in terms(subject, body) if (index := self.terms.get(term)) is not None)
        indices = np.array(list(counts), dtype=np.intp)
        tf = np.array([1.0 + math.log(count) for count in counts.values()], dtype=np.float32)  # sublinear, as trained
        values = tf * self.idf[indices]
        norm = float(np.linalg.norm(values))
        if norm:
            values /= norm
        dense = np.array(_keyword_features(reading(subject, body, categories), self.names), dtype=np.float32)
        size = len(self.terms)
        answers = {}
        for field, head in self.heads.items():
            weights = head.weights
            scores = weights[:, indices] @ values + weights[:, size:] @ (dense * KEYWORD_WEIGHT) + head.intercept
            answers[field] = head.classes[int(np.argmax(scores))]
        return answers

    def to_stored(self, **facts: Any) -> Trained:
        """As the store keeps it (`facts`: when, on what, how well); the inverse of `from_stored`."""
        vocabulary = sorted(self.terms, key=self.terms.__getitem__)
        heads = {
            field: Head(
                classes=list(head.classes),
                weights=head.weights.astype(_DTYPE).tobytes(),
                intercept=[float(each) for each in head.intercept],
            )
            for field, head in self.heads.items()
        }
        return Trained(
            features=FEATURES,
            terms="\n".join(vocabulary),
            idf=self.idf.astype(_DTYPE).tobytes(),
            categories=list(self.names),
            **heads,
            **facts,
        )

    @classmethod
    def from_stored(cls, stored: Trained) -> Classifier | None:
        """The classifier a stored model holds; None when it was trained on other features (an older version)."""
        if stored.features != FEATURES:
            return None
        vocabulary = stored.terms.split("\n") if stored.terms else []
        width = len(vocabulary) + 2 * len(stored.categories) + len(PRIORITIES) + 4
        heads = {}
        for field in FIELDS:
            head: Head = getattr(stored, field)
            weights = np.frombuffer(head.weights, dtype=_DTYPE).reshape(len(head.classes), width)
            heads[field] = Fitted(tuple(head.classes), weights, np.array(head.intercept, dtype=np.float32))
        return cls(
            terms={term: index for index, term in enumerate(vocabulary)},
            idf=np.frombuffer(stored.idf, dtype=_DTYPE),
            names=tuple(stored.categories),
            heads=heads,
        )


def train(examples: Sequence[Example], categories: Sequence[CategoryEntry]) -> Classifier:
    """A classifier fitted to `examples` (at least one)."""
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer

    names = tuple(dict.fromkeys([*(entry.name for entry in categories), FALLBACK_CATEGORY]))
    vectoriser = TfidfVectorizer(
        analyzer=lambda example: terms(example.subject, example.body),
        sublinear_tf=True,
        max_features=MAX_TERMS,
        dtype=np.float32,
    )
    words = vectoriser.fit_transform(examples)
    keywords = [_keyword_features(reading(each.subject, each.body, categories), names) for each in examples]
    features = hstack([words, csr_matrix(np.array(keywords, dtype=np.float32) * KEYWORD_WEIGHT)]).tocsr()
    heads = {field: _fit(features, [getattr(each, field) for each in examples]) for field in FIELDS}
    vocabulary: dict[str, int] = {term: int(index) for term, index in vectoriser.vocabulary_.items()}
    return Classifier(terms=vocabulary, idf=vectoriser.idf_.astype(np.float32), names=names, heads=heads)


def _fit(features: csr_matrix, labels: list[str]) -> Fitted:
    """A one-vs-rest linear SVM; with one class only, that class is always the answer."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    classes = tuple(sorted(set(labels)))
    if len(classes) == 1:
        return Fitted(classes, np.zeros((1, features.shape[1]), dtype=np.float32), np.zeros(1, dtype=np.float32))
    model = LinearSVC(C=1.0, max_iter=5_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # still the best fit found: judged on held-out tickets
        model.fit(features, labels)
    weights, intercept = model.coef_.astype(np.float32), model.intercept_.astype(np.float32)
    if len(classes) == 2:  # one score, positive for the second class: as two, so the larger wins
        weights, intercept = np.vstack([-weights, weights]), np.concatenate([-intercept, intercept])
    return Fitted(tuple(str(each) for each in model.classes_), weights, intercept)


@dataclass(frozen=True)
class Learnt:
    """A classifier trained on all the examples, and how its twin trained without the held-out ones did on them."""

    classifier: Classifier
    examples: int
    held_out: int
    accuracy: dict[str, float]  # per field, the classifier's on the held-out tickets
    keywords: dict[str, float]  # per field, the keyword tables' on the same tickets
    answers: tuple[str, ...]  # the fields it answers: where it beat the keyword tables

    def to_stored(self, *, trained_at: datetime) -> Trained:
        return self.classifier.to_stored(
            trained_at=trained_at,
            examples=self.examples,
            held_out=self.held_out,
            category_accuracy=self.accuracy["category"],
            priority_accuracy=self.accuracy["priority"],
            keywords_category_accuracy=self.keywords["category"],
            keywords_priority_accuracy=self.keywords["priority"],
            answers=list(self.answers),
        )


def learn(examples: Sequence[Example], categories: Sequence[CategoryEntry]) -> Learnt | None:
    """Train and judge a classifier on reviewed tickets (None: fewer than MIN_EXAMPLES)."""
    if len(examples) < MIN_EXAMPLES:
        return None
    held = [each for each in examples if each.number % HELD_OUT_EVERY == 0]
    rest = [each for each in examples if each.number % HELD_OUT_EVERY != 0]
    right, keywords_right = Counter[str](), Counter[str]()
    if held and rest:
        probe = train(rest, categories)
        for each in held:
            said = probe.predict(each.subject, each.body, categories)
            read = reading(each.subject, each.body, categories)
            for field, keyword_answer in (("category", read.category), ("priority", read.priority)):
                right[field] += said[field] == getattr(each, field)
                keywords_right[field] += keyword_answer == getattr(each, field)
    answers = tuple(field for field in FIELDS if len(held) >= MIN_HELD_OUT and right[field] > keywords_right[field])
    return Learnt(
        train(examples, categories),
        examples=len(examples),
        held_out=len(held),
        accuracy={field: right[field] / len(held) if held else 0.0 for field in FIELDS},
        keywords={field: keywords_right[field] / len(held) if held else 0.0 for field in FIELDS},
        answers=answers,
    )


def learned_triage(
    ticket: TicketText,
    catalog: Sequence[SkillInfo],
    categories: Sequence[CategoryEntry],
    classifier: Classifier,
    answers: Sequence[str],
    about: str,
) -> Triage:
    """The keyword triage with the fields in `answers` decided by the classifier instead; `about` (when and on what
    it was trained, how well) leads the notes."""
    keyword = heuristic_triage(ticket, catalog, categories)
    said = classifier.predict(ticket.subject, ticket.body, categories)
    decided = {field: said[field] for field in answers if field in FIELDS}
    rest = keyword.helpful_notes.removeprefix("Keyword triage (no AI).").strip()
    learned = ", ".join(f"{field} {value}" for field, value in decided.items())
    notes = f"Learned triage ({about}): {learned}. The keyword tables: {rest}"
    raw = Triage.model_validate({**keyword.model_dump(), **decided, "helpful_notes": notes})
    return clamp(raw, catalog, categories)
