"""docs/settings.md, generated from the settings model: one row per field of `Settings`, in the model's order.

    uv run python -m helpgate.core.settings_reference > docs/settings.md

Each row is the environment variable (the field's `validation_alias`, else the prefix and the upper-cased name),
the default and the field's `description`. A default the value alone would not explain is given by the field's
`json_schema_extra={"default_text": ...}` (markdown); other defaults are shown as they are written in the
environment. tests/core/test_settings_reference.py fails when docs/settings.md differs from `render()`.
"""

from __future__ import annotations

import enum
import sys
from pathlib import Path

from pydantic.fields import FieldInfo

from helpgate.core.settings import Settings

HEADER = """\
# Settings

<!-- Generated from the fields of src/helpgate/core/settings.py: change a description there, then run
     uv run python -m helpgate.core.settings_reference > docs/settings.md -->

From the environment or a `.env` file in the working directory, by the names below and no others (another
program's `SECRET_KEY`, or a field name such as `OUTBOUND_SMTP_HOST`, is ignored).

| variable | default | meaning |
|---|---|---|
"""


def env_name(name: str, field: FieldInfo) -> str:
    """The one name the environment sets this field by (see settings._DocumentedNames)."""
    alias = field.validation_alias
    if alias is None:
        return f"{Settings.model_config.get('env_prefix') or ''}{name}".upper()
    if not isinstance(alias, str):
        raise TypeError(f"{name}: only a plain string alias can be documented, not {alias!r}")
    return alias


def _value(value: object) -> str:
    """A default as it would be written in the environment."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return _value(value.value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ",".join(_value(item) for item in value)
    if isinstance(value, Path | str | int | float):
        return str(value)
    raise TypeError(f"no way to show the default {value!r}: give the field a default_text")


def default_text(name: str, field: FieldInfo) -> str:
    extra = field.json_schema_extra
    if isinstance(extra, dict) and "default_text" in extra:
        return str(extra["default_text"])
    if field.default_factory is not None:
        raise ValueError(f"{name}: a default made by a factory needs a default_text")
    if field.default is None:
        return "unset"
    shown = _value(field.default)
    return f"`{shown}`" if shown else "empty"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render() -> str:
    """The whole of docs/settings.md."""
    rows = []
    for name, field in Settings.model_fields.items():
        if not field.description:
            raise ValueError(f"the setting {name} has no description")
        cells = (f"`{env_name(name, field)}`", default_text(name, field), field.description)
        rows.append("| " + " | ".join(_cell(cell) for cell in cells) + " |\n")
    return HEADER + "".join(rows)


if __name__ == "__main__":
    sys.stdout.write(render())
