"""Undo RFC 3676 ``format=flowed`` soft line breaks (Thunderbird, Apple Mail, many webmailers).

A line ending in a space continues on the next line of the same quote depth; a leading space is stuffing; the
signature separator ``-- `` is never flowed. With ``delsp=yes`` the trailing space was added by the sender and
is removed on joining.
"""

from __future__ import annotations

SIGNATURE_SEPARATOR = "-- "


def unflow(text: str, *, delsp: bool = False) -> str:
    lines: list[str] = []
    current: str | None = None
    depth = 0
    for raw_line in text.split("\n"):
        line_depth = len(raw_line) - len(raw_line.lstrip(">"))
        content = raw_line[line_depth:]
        if content.startswith(" "):
            content = content[1:]
        if current is not None and line_depth != depth:
            lines.append(_quoted(current, depth))
            current = None
        flowed = content.endswith(" ") and content != SIGNATURE_SEPARATOR
        if flowed and delsp:
            content = content[:-1]
        current = content if current is None else current + content
        depth = line_depth
        if not flowed:
            lines.append(_quoted(current, depth))
            current = None
    if current is not None:
        lines.append(_quoted(current, depth))
    return "\n".join(lines)


def _quoted(content: str, depth: int) -> str:
    return f"{'>' * depth} {content}" if depth else content
