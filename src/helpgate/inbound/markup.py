"""HTML bodies: sanitised for display (nh3, the Ammonia sanitiser) and turned into text (inscriptis).

Sanitising keeps structure and links and drops scripts, styles, event handlers and unknown URL schemes; ``cid:``
stays allowed so inline images can be shown from their attachments. Very large HTML is cut before either step
(both grow with the input; the raw message keeps everything).
"""

from __future__ import annotations

import logging
import re

import inscriptis
import nh3
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig

log = logging.getLogger(__name__)

MAX_HTML_CHARS = 2_000_000
URL_SCHEMES = nh3.ALLOWED_URL_SCHEMES | {"cid"}
#: nh3's defaults plus the markers of quoted history (Gmail's ``gmail_quote``, Apple's ``type="cite"``), so a
#: viewer can fold it away.
ATTRIBUTES = {
    **nh3.ALLOWED_ATTRIBUTES,
    "div": {*nh3.ALLOWED_ATTRIBUTES.get("div", set()), "class"},
    "blockquote": {*nh3.ALLOWED_ATTRIBUTES.get("blockquote", set()), "class", "type"},
}
#: inscriptis' default ``relaxed`` profile pads every <span> with spaces and indents nested <div>s, which splits
#: CJK words (``中<span>文</span>字`` read as ``中 文 字``) and Outlook's span-per-run text; ``strict`` lays text
#: out as a browser's default stylesheet does, block elements still on their own lines.
TEXT_CONFIG = ParserConfig(css=CSS_PROFILES["strict"])
_TAGS = re.compile(r"<[^>]*>")
_WHITESPACE_LINES = re.compile(r"[ \t]+\n")
_BLANK_RUNS = re.compile(r"\n{3,}")


def sanitise(html: str) -> str:
    return nh3.clean(
        _bounded(html), attributes=ATTRIBUTES, url_schemes=URL_SCHEMES, link_rel="noopener noreferrer nofollow"
    )


def to_text(html: str) -> str:
    """Readable text of an HTML body: block structure kept as lines, tables as columns, no markup; inline elements
    add no spaces of their own (see TEXT_CONFIG)."""
    html = _bounded(html)
    try:
        text = inscriptis.get_text(html, TEXT_CONFIG)
    except Exception as error:  # lxml refuses some inputs; a crude strip still gives the words
        log.info("mime.html_to_text_fallback reason=%s", type(error).__name__)
        text = _TAGS.sub(" ", html)
    text = _WHITESPACE_LINES.sub("\n", text.replace("\xa0", " "))
    return _BLANK_RUNS.sub("\n\n", text).strip()


def _bounded(html: str) -> str:
    if len(html) <= MAX_HTML_CHARS:
        return html
    log.info("mime.html_truncated chars=%d limit=%d", len(html), MAX_HTML_CHARS)
    return html[:MAX_HTML_CHARS]
