"""The mailboxes documents (Beanie)."""

from helpgate.mailboxes.models.lease import Lease
from helpgate.mailboxes.models.mailbox import ImapSecurity, Mailbox, MailboxState

__all__ = ["ImapSecurity", "Lease", "Mailbox", "MailboxState"]
