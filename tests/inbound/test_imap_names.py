"""Folder names on the IMAP wire: modified UTF-7 (RFC 3501 5.1.3), quoted when not an atom."""

from __future__ import annotations

import pytest

from helpgate.inbound.imap_names import mailbox_argument, modified_utf7


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("INBOX", "INBOX"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # the RFC's own example
        ("Ärger & Co", "&AMQ-rger &- Co"),
        ("😀", "&2D3eAA-"),  # outside the BMP: a surrogate pair
        ("a,b/c", "a,b/c"),  # "," and "/" are plain ASCII here; only inside base64 is "/" written ","
    ],
)
def test_modified_utf7(name: str, wire: str) -> None:
    assert modified_utf7(name) == wire


@pytest.mark.parametrize(
    ("name", "argument"),
    [
        ("INBOX", "INBOX"),
        ("Archive/2026", "Archive/2026"),
        ("Sent Items", '"Sent Items"'),
        ("[Gmail]/All Mail", '"[Gmail]/All Mail"'),
        ('say "hi" \\ bye', '"say \\"hi\\" \\\\ bye"'),
        ("50%", '"50%"'),
        ("Ärger", "&AMQ-rger"),
    ],
)
def test_mailbox_argument_quotes_what_is_not_an_atom(name: str, argument: str) -> None:
    assert mailbox_argument(name) == argument
