"""Subject normalisation for threading."""

from __future__ import annotations

import pytest

from helpgate.inbound import subjects


@pytest.mark.parametrize(
    "subject",
    [
        "Printer on fire",
        "Re: Printer on fire",
        "RE: RE: Printer on fire",
        "AW: Printer on fire",
        "SV: Printer  on   fire",
        "Antw: Printer on fire",
        "Re[2]: Printer on fire",
        "Re: [#42] Printer on fire",
        "[support] Re: Printer on fire",
        "Fwd: Re: printer ON fire",
        "回复\uff1aPrinter on fire",
    ],
)
def test_reply_forms_share_one_key(subject: str) -> None:
    assert subjects.key(subject) == "printer on fire"


def test_reply_prefix_is_detected_forward_alone_is_not() -> None:
    assert subjects.is_reply("AW: Rechnung")
    assert subjects.is_reply("Fwd: Re: Rechnung")
    assert not subjects.is_reply("Fwd: Rechnung")
    assert not subjects.is_reply("Rechnung")
    assert not subjects.is_reply("Re-order of parts: status")  # a word, not a prefix


def test_colon_in_subject_is_kept() -> None:
    assert subjects.key("Error: disk full") == "error: disk full"
    assert subjects.key("Re: Error: disk full") == "error: disk full"


def test_ticket_tokens() -> None:
    assert subjects.ticket_tokens("Re: [#12] Printer [#7]") == [12, 7]
    assert subjects.ticket_tokens("Order #12 [12]") == []
