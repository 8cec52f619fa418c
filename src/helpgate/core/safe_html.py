"""HTML from mail, made safe to show: every HTML body is sanitised again on its way out, whoever wrote it.

Inbound HTML was sanitised when it arrived and an agent's HTML when it was mailed, but what is stored may predate
a stricter rule, so the API (and any screen) shows only what passes here. nh3 (Ammonia) keeps structure and
links and drops scripts, styles, event handlers, forms and every URL scheme but http, https, mailto, tel and cid.

Remote images are marked, never fetched: an image whose source is anything but an attachment (`cid:`) has its
source moved to `data-remote-src`, so showing the HTML loads nothing from the sender's server (tracking pixels,
and requests to our own origin through relative URLs). A viewer who asks for them gets `https:` images back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import nh3

URL_SCHEMES = {"http", "https", "mailto", "tel", "cid"}
ATTRIBUTES = {
    **nh3.ALLOWED_ATTRIBUTES,
    "div": {*nh3.ALLOWED_ATTRIBUTES.get("div", set()), "class"},
    "blockquote": {*nh3.ALLOWED_ATTRIBUTES.get("blockquote", set()), "class", "type"},
}
#: Image maps can link anywhere a script could not reach otherwise; mail has no use for them.
TAGS = nh3.ALLOWED_TAGS - {"area", "map"}
# Ammonia writes every attribute as name="value" with `"`, `<` and `>` escaped, so a tag ends at the first `>`
# and its attributes can be read one after the other (a value never holds a `"`).
_IMG = re.compile(r"<img\b([^>]*?)(\s*/?)>")
_ATTRIBUTE = re.compile(r'\s+([^\s="/>]+)(?:="([^"]*)")?')


@dataclass(frozen=True)
class SafeHtml:
    html: str
    remote_images: int  # images whose source was moved to data-remote-src


def for_display(html: str, *, remote_images: bool = False) -> SafeHtml:
    """Sanitised HTML; with `remote_images`, `https:` images keep their source (the viewer asked for them)."""
    if not html:
        return SafeHtml(html="", remote_images=0)
    clean = nh3.clean(
        html, tags=TAGS, attributes=ATTRIBUTES, url_schemes=URL_SCHEMES, link_rel="noopener noreferrer nofollow"
    )
    marked = 0

    def mark(tag: re.Match[str]) -> str:
        nonlocal marked
        attributes = []
        for name, value in _attributes(tag.group(1)):
            url = (value or "").lower()
            if name == "src" and not (url.startswith("cid:") or (remote_images and url.startswith("https:"))):
                name = "data-remote-src"
                marked += 1
            attributes.append(name if value is None else f'{name}="{value}"')
        return "<img" + "".join(" " + attribute for attribute in attributes) + tag.group(2) + ">"

    return SafeHtml(html=_IMG.sub(mark, clean), remote_images=marked)


def _attributes(text: str) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    position = 0
    while (match := _ATTRIBUTE.match(text, position)) is not None:
        found.append((match.group(1).lower(), match.group(2)))
        position = match.end()
    if text[position:].strip():  # not what Ammonia writes: show no image rather than guess
        return [(name, value) for name, value in found if name != "src"]
    return found
