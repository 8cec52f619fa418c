"""Mail templates: every kind renders both parts, HTML is escaped, admins override by dropping files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from helpgate.mail_out.templates import TemplateKind, Templates, clean_html, paragraphs

TICKET = {"number": 12, "subject": "Printer <script>alert(1)</script>", "status": "open"}
CONTEXTS: dict[TemplateKind, dict[str, Any]] = {
    TemplateKind.TICKET_ACKNOWLEDGEMENT: {"ticket": TICKET, "customer_name": "Jane & Co"},
    TemplateKind.AGENT_REPLY: {
        "ticket": TICKET,
        "customer_name": "Jane",
        "agent_name": "Al",
        "body_text": "Try <this> & that.",
        "body_html": paragraphs("Try <this> & that."),
    },
    TemplateKind.TICKET_ASSIGNED: {
        "ticket": TICKET,
        "agent_name": "Al",
        "assigned_by": "Boss",
        "requester": {"email": "jane@example.org", "name": "Jane"},
        "triage": None,
    },
    TemplateKind.WELCOME: {
        "user_name": "Jane",
        "email": "jane@example.org",
        "role": "customer",
        "support_address": "support@acme.test",
    },
    TemplateKind.TICKET_SOLVED: {"ticket": TICKET, "customer_name": ""},
    TemplateKind.SLA_ESCALATION: {
        "ticket": TICKET,
        "priority_was": "low",
        "priority": "medium",
        "due_at": "2026-12-01T10:00:00+00:00",
        "assignee": "",
    },
    TemplateKind.PASSWORD_RESET: {
        "purpose": "reset",
        "user_name": "Jane <b>",
        "email": "jane@example.org",
        "token": "tok-123",
        "expires_minutes": 30,
    },
    TemplateKind.MAILBOX_NEEDS_CONSENT: {
        "address": "support@acme.test",
        "mailbox_id": "65f0c0ffee0000000000abcd",
        "reason": "invalid_grant: <script>AADSTS50173</script>",
        "flow": "authorization_code",
    },
}


@pytest.mark.parametrize("kind", list(TemplateKind))
def test_every_kind_renders_text_and_escaped_html(kind: TemplateKind) -> None:
    rendered = Templates().render(kind, support_name="Acme Support", **CONTEXTS[kind])
    assert "Acme Support" in rendered.text and "Acme Support" in rendered.html
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>")
    assert "<script>" not in rendered.html
    assert "{{" not in rendered.text and "{#" not in rendered.text


@pytest.mark.parametrize("kind", list(TemplateKind))
def test_every_template_documents_its_variables(kind: TemplateKind) -> None:
    source = (Path(__file__).parents[2] / "src/helpgate/templates" / f"{kind}.txt.j2").read_text()
    assert source.startswith("{#-") and "Variables:" in source


def test_text_part_is_not_escaped_and_reads_on_its_own() -> None:
    rendered = Templates().render(TemplateKind.AGENT_REPLY, support_name="Acme", **CONTEXTS[TemplateKind.AGENT_REPLY])
    assert "Try <this> & that." in rendered.text
    assert "<p>Try &lt;this&gt; &amp; that.</p>" in rendered.html
    assert "ticket #12" in rendered.text


@pytest.mark.parametrize(
    ("purpose", "wording"),
    [("signup", "confirm your address and choose a password"), ("reset", "reset the password of jane@example.org")],
)
def test_password_reset_wording_follows_its_purpose(purpose: str, wording: str) -> None:
    context = {**CONTEXTS[TemplateKind.PASSWORD_RESET], "purpose": purpose}
    rendered = Templates().render(TemplateKind.PASSWORD_RESET, support_name="Acme", **context)
    for part in (rendered.text, rendered.html):
        assert wording in part.lower().replace("\n", " ") and "tok-123" in part
    assert "\n    tok-123\n" in rendered.text  # the code on a line of its own, easy to copy


def test_undefined_variable_is_an_error() -> None:
    with pytest.raises(Exception, match="customer_name"):
        Templates().render(TemplateKind.TICKET_SOLVED, support_name="Acme", ticket=TICKET)


def test_admin_override_wins_and_may_extend_the_layout(tmp_path: Path) -> None:
    overrides = tmp_path / "templates"
    overrides.mkdir()
    (overrides / "ticket_solved.txt.j2").write_text("Solved: #{{ ticket.number }}, {{ customer_name or 'friend' }}.\n")
    (overrides / "ticket_solved.html.j2").write_text(
        '{% extends "_layout.html.j2" %}{% block content %}<h1>{{ ticket.subject }}</h1>{% endblock %}'
    )
    rendered = Templates(tmp_path).render(
        TemplateKind.TICKET_SOLVED, support_name="Acme", ticket=TICKET, customer_name=""
    )
    assert rendered.text == "Solved: #12, friend.\n"
    assert "<h1>Printer &lt;script&gt;" in rendered.html and "<!DOCTYPE html>" in rendered.html


def test_broken_override_falls_back_to_the_builtin(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    overrides = tmp_path / "templates"
    overrides.mkdir()
    (overrides / "ticket_solved.txt.j2").write_text("{{ ticket.number ")
    rendered = Templates(tmp_path).render(
        TemplateKind.TICKET_SOLVED, support_name="Acme", ticket=TICKET, customer_name=""
    )
    assert "is now solved" in rendered.text
    assert any("template_override_broken" in record.message for record in caplog.records)


def test_agent_html_is_sanitised() -> None:
    cleaned = clean_html(
        '<p onclick="x()">Hi <a href="javascript:alert(1)">x</a><img src=x onerror=y></p><style>p{}</style>'
    )
    assert "onclick" not in cleaned and "javascript:" not in cleaned and "onerror" not in cleaned
    assert "<style>" not in cleaned and cleaned.startswith("<p>Hi")


def test_paragraphs_keep_lines_and_escape() -> None:
    assert paragraphs("a <b>\nc\n\n\nd") == "<p>a &lt;b&gt;<br>\nc</p>\n<p>d</p>"
