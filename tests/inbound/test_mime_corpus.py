"""The corpus in tests/corpus: one real-world shape or quirk per .eml, its expected parse in the .json beside it.

Sidecar keys (all optional but ``quirk``): subject, from_email, from_name, message_id, in_reply_to, to, cc,
text (exact), text_contains, full_text_contains, full_text_excludes, html_contains, html_excludes,
headers (name → exact value), report, attachments (each: filename, content_type, sniffed_type, inline, size,
content_id).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpgate.inbound import mime

CORPUS = Path(__file__).parent.parent / "corpus"
CASES = sorted(CORPUS.glob("*.eml"))


def expected(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("path", CASES, ids=[path.stem for path in CASES])
def test_corpus_message_parses_as_expected(path: Path) -> None:
    want = expected(path)
    mail = mime.parse(path.read_bytes())
    for name in ("subject", "from_email", "from_name", "message_id", "in_reply_to", "to", "cc", "text"):
        if name in want:
            assert getattr(mail, name) == want[name], name
    for fragment in want.get("text_contains", []):
        assert fragment in mail.text
    for fragment in want.get("full_text_contains", []):
        assert fragment in mail.full_text
    for fragment in want.get("full_text_excludes", []):
        assert fragment not in mail.full_text
    for fragment in want.get("html_contains", []):
        assert fragment in mail.html
    for fragment in want.get("html_excludes", []):
        assert fragment not in mail.html
    for name, value in want.get("headers", {}).items():
        assert mail.headers.get(name) == value, name
    if "report" in want:
        assert mail.report is not None
        assert mail.report.original_message_id == want["report"]["original_message_id"]
        assert [[r.address, r.action, r.status] for r in mail.report.recipients] == want["report"]["recipients"]
    if "attachments" in want:
        assert len(mail.attachments) == len(want["attachments"])
        for attachment, wanted in zip(mail.attachments, want["attachments"], strict=True):
            for name, value in wanted.items():
                assert getattr(attachment, name) == value, name


def test_every_corpus_message_has_a_sidecar_naming_its_quirk() -> None:
    assert len(CASES) >= 20
    for path in CASES:
        assert expected(path)["quirk"], path.name
