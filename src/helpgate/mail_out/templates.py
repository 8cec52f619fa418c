"""Jinja2 mail templates: a ``.txt.j2`` and an ``.html.j2`` per kind of mail.

The templates ship in the ``helpgate.templates`` package. An admin overrides one by dropping a file with the
same name into ``<data dir>/templates/``. A broken override (a syntax error, an unknown variable) is logged
and the built-in template is used instead, so a typo never stops mail. HTML is autoescaped; undefined
variables are errors (StrictUndefined), not silent blanks.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import nh3
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateError,
    select_autoescape,
)
from markupsafe import Markup

log = logging.getLogger(__name__)

OVERRIDE_DIR = "templates"


class TemplateKind(StrEnum):
    TICKET_ACKNOWLEDGEMENT = "ticket_acknowledgement"
    AGENT_REPLY = "agent_reply"
    TICKET_ASSIGNED = "ticket_assigned"
    WELCOME = "welcome"
    TICKET_SOLVED = "ticket_solved"
    SLA_ESCALATION = "sla_escalation"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a template name
    MAILBOX_NEEDS_CONSENT = "mailbox_needs_consent"


@dataclass(frozen=True)
class Rendered:
    text: str
    html: str


def paragraphs(text: str) -> Markup:
    """Plain text as HTML: escaped, blank lines become paragraphs, single newlines line breaks."""
    blocks = [html.escape(block) for block in re.split(r"\n\s*\n", text.strip()) if block.strip()]
    return Markup("\n".join("<p>" + block.replace("\n", "<br>\n") + "</p>" for block in blocks))  # noqa: S704


def clean_html(fragment: str) -> Markup:
    """Agent-written HTML, sanitised (no scripts, styles or event handlers) before it enters a mail."""
    return Markup(nh3.clean(fragment))  # noqa: S704 - nh3 has just removed everything unsafe


def _environment(loader: BaseLoader) -> Environment:
    environment = Environment(
        loader=loader,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["paragraphs"] = paragraphs
    return environment


class Templates:
    """Renders mail templates, preferring the admin's overrides in ``<data dir>/templates/``."""

    def __init__(self, data_dir: Path | None = None) -> None:
        package = PackageLoader("helpgate", "templates")
        self._builtin = _environment(package)
        self._override_dir = data_dir / OVERRIDE_DIR if data_dir is not None else None
        # An override may extend the built-in layout, so the package stays on its search path.
        self._override = (
            _environment(ChoiceLoader([FileSystemLoader(self._override_dir), package])) if self._override_dir else None
        )

    def render(self, kind: TemplateKind, **context: Any) -> Rendered:
        return Rendered(
            text=self._render(f"{kind}.txt.j2", context),
            html=self._render(f"{kind}.html.j2", context),
        )

    def _render(self, name: str, context: dict[str, Any]) -> str:
        if self._override is not None and self._override_dir is not None and (self._override_dir / name).is_file():
            try:
                return self._override.get_template(name).render(context)
            except TemplateError as error:
                log.error("mail.template_override_broken name=%s reason=%s: using the built-in one", name, error)
        return self._builtin.get_template(name).render(context)
