"""The learned triage of an installation: one document (`key` "triage") every instance reads, holding the classifier
as plain data and the schedule of the retraining chain.

The classifier is data, never code: the vocabulary as text, the weights as little-endian float32 bytes with their
shapes (workflows/ai/learned.py encodes and decodes them); nothing is unpickled. Written by the retraining
(workflows/ai/learning.py); left out of archives (maintenance/archive.py), as it is trained again from the tickets.
"""

from datetime import datetime

from beanie import Document
from pydantic import BaseModel, Field
from pymongo import ASCENDING, IndexModel

KEY = "triage"


class Head(BaseModel):
    """One field's linear classifier: a score per class, `weights` (classes by features) · x + `intercept`."""

    classes: list[str]
    weights: bytes  # float32, little-endian, row-major
    intercept: list[float]


class Facts(BaseModel):
    """When and on what a classifier was trained, and how it did on this installation's held-out tickets against
    the keyword tables."""

    trained_at: datetime
    features: str  # the feature set it was trained on (learned.FEATURES): another one cannot be read
    examples: int  # reviewed tickets it was trained on
    held_out: int  # of those, the ones kept out to measure it (then it was trained again on all)
    category_accuracy: float
    priority_accuracy: float
    keywords_category_accuracy: float
    keywords_priority_accuracy: float
    answers: list[str] = Field(default_factory=list)  # the fields it beat the keyword tables on: it answers them


class Trained(Facts):
    """A classifier as data, and its facts."""

    terms: str  # the vocabulary, one term per line, in feature order
    idf: bytes  # float32 per term
    categories: list[str]  # the catalog the keyword features were computed with, in order
    category: Head
    priority: Head


class TriageModel(Document):
    key: str = KEY
    chain: str | None = None  # the retraining chain that is current: another one stops at its next turn
    next_training_at: datetime | None = None  # when the current chain trains next
    model: Trained | None = None  # None: not trained yet (too few reviewed tickets)

    class Settings:
        name = "triage_models"
        indexes = [IndexModel([("key", ASCENDING)], unique=True, name="key_unique")]
