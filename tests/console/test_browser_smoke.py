"""The browser test setup works on its own, before any console page: Chromium starts headless, pages are waited
on, and a page's script errors reach the test."""

from __future__ import annotations

from urllib.parse import quote

from tests.browser import Browser


def page(html: str) -> str:
    return "data:text/html," + quote(html)


async def test_a_page_is_read_once_its_text_is_there(browser: Browser) -> None:
    await browser.open(page("<p id=x>hi</p>"))

    await browser.wait_text("#x", "hi")
    assert await browser.text("#x") == "hi"
    assert await browser.console_errors() == []


async def test_a_script_error_in_the_page_is_a_console_error(browser: Browser) -> None:
    await browser.open(page("<script>throw new Error('boom')</script><p id=x>after</p>"))

    await browser.find("#x")
    errors = await browser.console_errors()
    assert len(errors) == 1
    assert "Uncaught Error: boom" in errors[0]
