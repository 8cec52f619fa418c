"""The skill catalog: the skills triage may ask for and agents may have, kept by admins."""

from beanie import Document
from pymongo import ASCENDING, IndexModel


class Skill(Document):
    name: str  # lower-case; the unique key
    description: str = ""  # words that tell triage when a ticket needs this skill

    class Settings:
        name = "skills"
        indexes = [IndexModel([("name", ASCENDING)], unique=True, name="name_unique")]
