"""HTML bodies turned into text: what an agent reads when a mail has no plain-text part."""

from __future__ import annotations

import pytest

from helpgate.inbound import markup


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>中<span>文</span>字</p>", "中文字"),
        ("<p>日本<b>語</b>の<a href='https://example.org/'>テ</a>スト</p>", "日本語のテスト"),
        ("<p><span>Mit</span><span>freundlichen</span> Grüßen</p>", "Mitfreundlichen Grüßen"),
    ],
)
def test_inline_elements_add_no_spaces_inside_words(html: str, text: str) -> None:
    assert markup.to_text(html) == text


def test_block_elements_stay_on_their_own_lines_without_indentation() -> None:
    html = "<div>中文</div><div><div>字</div></div><p>段落</p><ul><li>一</li><li>二</li></ul>"
    assert markup.to_text(html) == "中文\n字\n\n段落\n\n  * 一\n  * 二"


def test_spaces_the_html_has_are_kept() -> None:
    assert markup.to_text("<p>Hello <span>World</span>!<br>Next line</p>") == "Hello World!\nNext line"
