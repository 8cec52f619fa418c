"""docs/settings.md is generated from the settings model, and every setting in it says what it does."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest
from pydantic.fields import FieldInfo

from helpgate.core import settings_reference
from helpgate.core.settings import Settings

SETTINGS_MD = Path(__file__).resolve().parents[2] / "docs" / "settings.md"
REGENERATE = "uv run python -m helpgate.core.settings_reference > docs/settings.md"


def test_every_setting_has_a_description() -> None:
    missing = [name for name, field in Settings.model_fields.items() if not (field.description or "").strip()]
    assert missing == [], f"give these settings a Field(description=...): {missing}"


def test_docs_settings_md_is_what_the_model_renders() -> None:
    written, rendered = SETTINGS_MD.read_text(encoding="utf-8"), settings_reference.render()
    diff = "".join(difflib.unified_diff(written.splitlines(True), rendered.splitlines(True), "written", "rendered"))
    assert written == rendered, f"docs/settings.md is out of date; run `{REGENERATE}`:\n{diff}"


def test_each_setting_is_one_row_under_the_name_the_environment_sets_it_by() -> None:
    rows = [line for line in settings_reference.render().splitlines() if line.startswith("| `")]
    names = [re.match(r"\| `([A-Z0-9_]+)` \|", row)[1] for row in rows]  # type: ignore[index]
    assert len(names) == len(Settings.model_fields) == len(set(names))
    assert {"HELPGATE_DATA_DIR", "MONGODB_URI", "SMTP_HOST", "HELPGATE_SECRET_KEY", "INNGEST_SIGNING_KEY"} <= set(names)
    assert "HELPGATE_OUTBOUND_SMTP_HOST" not in names  # an aliased field is read by its alias only
    row = rows[names.index("HELPGATE_SMTP_IDLE_TIMEOUT_SECONDS")]
    assert "| `300` |" in row, "a whole float is shown as it would be written"
    assert "| `false` |" in rows[names.index("HELPGATE_QUARANTINE_DMARC_FAIL")]
    assert "| `starttls` |" in rows[names.index("SMTP_SECURITY")]
    assert "| unset: embedded store |" in rows[names.index("MONGODB_URI")]


def test_a_setting_without_a_description_stops_the_render(monkeypatch: pytest.MonkeyPatch) -> None:
    fields = dict(Settings.model_fields)
    fields["undescribed"] = FieldInfo(default=1)
    monkeypatch.setattr(settings_reference, "Settings", type("Fake", (), {"model_fields": fields, "model_config": {}}))
    with pytest.raises(ValueError, match="undescribed has no description"):
        settings_reference.render()


def test_a_default_made_by_a_factory_needs_a_text() -> None:
    with pytest.raises(ValueError, match="needs a default_text"):
        settings_reference.default_text("x", FieldInfo(default_factory=list, description="x"))
