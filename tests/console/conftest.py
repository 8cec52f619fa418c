"""Browser fixtures for the web console's tests: headless Debian Chromium through Selenium (tests/browser.py).

`chromium` is one browser per pytest-xdist worker (session scope: started when a test first asks for it, quit at
the end); `browser` wraps it for one test and leaves it blank after (no cookies, storage or console log, at
about:blank); `second_browser` is a separate browser of the test's own (own cookies: a second user), quit after.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from selenium import webdriver

from tests.browser import Browser, chromium_driver


@pytest.fixture(scope="session")
def chromium() -> Iterator[webdriver.Chrome]:
    driver = chromium_driver()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
async def browser(chromium: webdriver.Chrome) -> AsyncIterator[Browser]:
    opened = Browser(chromium)
    try:
        yield opened
    finally:
        await opened.clear()


@pytest.fixture
async def second_browser() -> AsyncIterator[Browser]:
    opened = await Browser.start()
    try:
        yield opened
    finally:
        await opened.close()
