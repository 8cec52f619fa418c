"""A consent an admin started for an OAuth2 mailbox and the provider has not sent back yet (authorization code)."""

from datetime import datetime

from beanie import Document, PydanticObjectId
from pymongo import ASCENDING, IndexModel


class OAuthConsent(Document):
    id: str  # type: ignore[assignment]  # the sha256 of `state`: the state itself is never stored
    mailbox_id: PydanticObjectId
    admin_id: PydanticObjectId  # who started it: the callback stores the grant only while they are still an admin
    verifier_encrypted: str  # PKCE code_verifier (Fernet)
    redirect_uri: str
    return_to: str | None = None  # a path of ours the callback sends the browser on to (the console's mailbox page)
    expires_at: datetime
    created_at: datetime

    class Settings:
        name = "oauth_consents"
        indexes = [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires_ttl")]
