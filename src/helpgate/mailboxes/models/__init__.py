"""The mailboxes documents (Beanie)."""

from helpgate.mailboxes.models.consent import OAuthConsent
from helpgate.mailboxes.models.lease import Lease
from helpgate.mailboxes.models.mailbox import (
    GrantState,
    ImapSecurity,
    Mailbox,
    MailboxAuth,
    MailboxState,
    OAuthClient,
    OAuthFlow,
    OAuthGrant,
    OAuthProvider,
)

__all__ = [
    "GrantState",
    "ImapSecurity",
    "Lease",
    "Mailbox",
    "MailboxAuth",
    "MailboxState",
    "OAuthClient",
    "OAuthConsent",
    "OAuthFlow",
    "OAuthGrant",
    "OAuthProvider",
]
