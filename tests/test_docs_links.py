"""Every relative link in README.md and docs/*.md leads somewhere: an existing file and, for `#anchor`, a heading."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+\1")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lower-cased, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a markdown file; a repeated heading gets -1, -2... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match[2])
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path) -> list[str]:
    """Link targets in a markdown file that are not URLs (no scheme), outside code."""
    targets = []
    for line in prose_lines(path.read_text(encoding="utf-8")):
        for match in _LINK.finditer(_INLINE_CODE.sub("", line)):
            target = match[1]
            if target and not _SCHEME.match(target):
                targets.append(target)
    return targets


def broken(path: Path, target: str) -> str | None:
    """Why a link from `path` to `target` leads nowhere, or None."""
    file_part, _, anchor = target.partition("#")
    linked = (path.parent / file_part).resolve() if file_part else path
    if not linked.exists():
        return f"{target}: no such file"
    if anchor:
        if linked.suffix != ".md" or linked.is_dir():
            return f"{target}: an anchor into a file that is not markdown"
        if anchor not in anchors(linked):
            return f"{target}: {linked.name} has no heading with that anchor"
    return None


def test_slugs_are_githubs() -> None:
    assert slug("Quickstart (five minutes)") == "quickstart-five-minutes"
    assert slug("Live updates: `GET /api/events`") == "live-updates-get-apievents"
    assert slug("An agent's day, with curl") == "an-agents-day-with-curl"
    assert slug("helpgate — architecture") == "helpgate--architecture"
    assert slug("Metrics scrape and `/readyz` (2026-12-02)") == "metrics-scrape-and-readyz-2026-12-02"
    assert slug("[The API](api.md) in_full") == "the-api-in_full"


def test_links_are_found_outside_code_only(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        'See [a](a.md), [b](b.md#part "title") and <https://example.org>, [web](https://example.org/x).\n'
        "Not `[c](c.md)`, nor:\n```sh\n[d](d.md)\n```\n![img](img/x.png)\n[top](#page)\n"
    )
    assert relative_links(page) == ["a.md", "b.md#part", "img/x.png", "#page"]


def test_a_missing_file_or_heading_is_reported(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## Part two\n\n## Part two\n")
    page = tmp_path / "page.md"
    page.write_text("# Page\n")
    assert broken(page, "other.md#part-two") is None
    assert broken(page, "other.md#part-two-1") is None
    assert broken(page, "#page") is None
    assert broken(page, "missing.md") == "missing.md: no such file"
    assert broken(page, "other.md#part-three") is not None
    assert broken(page, "#nowhere") is not None


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_leads_somewhere(page: Path) -> None:
    problems = [problem for target in relative_links(page) if (problem := broken(page, target))]
    assert problems == [], f"{page.relative_to(ROOT)}: " + "; ".join(problems)


def test_readme_links_every_page_of_docs() -> None:
    linked = {target.partition("#")[0] for target in relative_links(ROOT / "README.md")}
    unlinked = {f"docs/{page.name}" for page in PAGES[1:]} - linked
    assert unlinked == set(), f"the README links no {sorted(unlinked)}"
