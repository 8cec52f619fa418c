"""The ticket view's text: the newest reply without quoted history or signature, never empty by mistake."""

from __future__ import annotations

import pytest

from helpgate.inbound import flowed, quotes


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("Thanks!\n\nOn Mon, 3 Nov 2025 at 10:12, Support <s@example.com> wrote:\n> Try again.\n", "Thanks!"),
        ("Ja.\n\nAm 03.11.25 um 10:12 schrieb Support:\n> Welche Version?\n", "Ja."),
        ("Oui.\n\nLe lun. 3 nov. 2025 à 10:12, Support <s@example.com> a écrit :\n> Quelle version ?\n", "Oui."),
        (
            "Still broken.\n\n-----Original Message-----\nFrom: Support\nSent: Monday\nSubject: x\n\nold\n",
            "Still broken.",
        ),
        (
            "Geht nicht.\n\nVon: Support <s@example.com>\nGesendet: Montag\nAn: Max\nBetreff: AW: x\n\nalt\n",
            "Geht nicht.",
        ),
        ("Works now.\n\n-- \nJane Doe\nACME Inc.\n", "Works now."),
        ("Answer here.\n> old question\n> more old", "Answer here."),
    ],
)
def test_quoted_history_and_signature_are_stripped(text: str, reply: str) -> None:
    assert quotes.reply_text(text) == reply


def test_hyphen_lists_are_not_taken_for_signatures() -> None:
    text = "Steps:\n- open the app\n- click login\n\nPlease help."
    assert quotes.reply_text(text) == text


def test_a_message_that_is_all_quote_is_kept_whole() -> None:
    assert quotes.reply_text("> quoted only\n> more") == "> quoted only\n> more"


def test_text_after_a_sign_off_word_is_kept_when_too_long_for_a_signature() -> None:
    text = "I tried it.\nThanks, but here are the logs:\n" + "\n".join(f"log line {i}" for i in range(20))
    assert "log line 19" in quotes.reply_text(text)


def test_a_very_long_text_without_a_quote_header_near_its_start_is_kept_whole() -> None:
    text = "line of a long log\n" * 3000 + "\nOn Mon, 3 Nov 2025, Support wrote:\n> x\n"
    assert quotes.reply_text(text) == text.strip()


def test_format_flowed_soft_breaks_are_joined_and_quote_depth_kept() -> None:
    assert flowed.unflow("A long \nline.\n> quoted \n> line\n-- \nsig") == "A long line.\n> quoted line\n-- \nsig"
    assert flowed.unflow("word \nwrap", delsp=True) == "wordwrap"
