"""The category catalog: the categories triage chooses from, kept by admins."""

from beanie import Document
from pydantic import Field
from pymongo import ASCENDING, IndexModel


class Category(Document):
    name: str  # lower-case; the unique key
    description: str = ""  # what belongs here, and what tells it apart from its neighbours (for the AI)
    keywords: list[str] = Field(default_factory=list)  # words that point here (for the keyword triage)
    rank: int = 0  # the catalog's order: the earlier category wins a keyword tie

    class Settings:
        name = "categories"
        indexes = [IndexModel([("name", ASCENDING)], unique=True, name="name_unique")]
