"""Headless Debian Chromium driven by Selenium, for the web console's browser tests.

The browser and its driver are Debian's (packages chromium and chromium-driver, which .ci/run installs), started
by their paths: Selenium Manager, which would download a browser or a driver, is never asked (only package
registries are reachable), and SE_OFFLINE keeps it offline should anything reach it.

The server under test runs on the test's own event loop, and every WebDriver command is a blocking HTTP request
to chromedriver that may wait for the page, which may be waiting for that server: made on the loop, it would
deadlock. `Browser` runs each command in a thread (`asyncio.to_thread`), and its waits poll there.
Conditions are waited on, never slept on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TIMEOUT = 10.0  # seconds a wait lasts unless told
POLL = 0.05  # seconds between two looks at the page while waiting (each look is a round trip to chromedriver)
PAGE_LOAD_TIMEOUT = 30.0
WINDOW_SIZE = (1280, 900)

# Read by Selenium Manager: never download anything (it is not even run, as both paths are given).
os.environ.setdefault("SE_OFFLINE", "true")


def chromium_driver() -> webdriver.Chrome:
    """A new headless Chromium with its own profile (so its own cookies), logging the page's console: its
    entries are read with `driver.get_log("browser")`. Blocking: from async code, start it in a thread."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # tests run as root, where Chromium's sandbox does not start
        "--disable-dev-shm-usage",  # a container's small /dev/shm crashes tabs
        "--disable-gpu",
        f"--window-size={WINDOW_SIZE[0]},{WINDOW_SIZE[1]}",
        # No connections to Google's services: the machine's closed network refuses them, many at a time.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--no-first-run",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
    except BaseException:
        driver.quit()
        raise
    return driver


class Browser:
    """One Chromium for an async test, every command run in a thread (see the module's docstring).

    Elements that `find` returns are live handles: call their methods through `run` (or `asyncio.to_thread`),
    never directly on the test's loop, as a click that makes the page ask the server would deadlock.
    A Browser made by `start` or `new_session` owns its driver, and `close` quits it; one made around a shared
    driver (the `browser` fixture's) leaves it running, and `close` only clears it.
    """

    def __init__(self, driver: webdriver.Chrome, *, timeout: float = TIMEOUT, owned: bool = False) -> None:
        self.driver = driver
        self.timeout = timeout
        self.owned = owned
        self._log: list[dict[str, Any]] = []  # the page's console entries read so far, since the last clear

    @classmethod
    async def start(cls, *, timeout: float = TIMEOUT) -> Self:
        """A Browser with a new Chromium of its own (own cookies and storage); `close` quits it."""
        return cls(await asyncio.to_thread(chromium_driver), timeout=timeout, owned=True)

    async def new_session(self) -> Browser:
        """A second, separate browser (own driver, cookies and storage), e.g. a second user; close it after."""
        return await Browser.start(timeout=self.timeout)

    async def run[T](self, fn: Callable[[webdriver.Chrome], T]) -> T:
        """`fn(driver)` in a thread: any WebDriver call the methods here do not cover."""
        return await asyncio.to_thread(fn, self.driver)

    def _wait(self, timeout: float | None) -> WebDriverWait[webdriver.Chrome]:
        return WebDriverWait(
            self.driver,
            self.timeout if timeout is None else timeout,
            poll_frequency=POLL,
            ignored_exceptions=(StaleElementReferenceException,),
        )

    async def open(self, url: str) -> None:
        """Goes to `url` and waits for its load event (the page's own requests may still be under way)."""
        await self.run(lambda driver: driver.get(url))

    async def url(self) -> str:
        return await self.run(lambda driver: driver.current_url)

    async def find(self, css: str, *, timeout: float | None = None) -> WebElement:
        """The first element matching `css`, once there is one (in the page; not necessarily visible)."""
        condition = expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
        message = f"no element matches {css!r}"
        return await self.run(lambda _: self._wait(timeout).until(condition, message))

    async def wait_text(self, css: str, text: str, *, timeout: float | None = None) -> None:
        """Waits until the first element matching `css` contains `text` in its rendered text."""
        condition = expected_conditions.text_to_be_present_in_element((By.CSS_SELECTOR, css), text)
        message = f"no element matching {css!r} came to contain {text!r}"
        await self.run(lambda _: self._wait(timeout).until(condition, message))

    async def wait_gone(self, css: str, *, timeout: float | None = None) -> None:
        """Waits until no element matching `css` is displayed: none left in the page, or all hidden."""

        def gone(driver: webdriver.Chrome) -> bool:
            return not any(element.is_displayed() for element in driver.find_elements(By.CSS_SELECTOR, css))

        message = f"an element matching {css!r} is still displayed"
        await self.run(lambda _: self._wait(timeout).until(gone, message))

    async def text(self, css: str, *, timeout: float | None = None) -> str:
        """The rendered text of the first element matching `css`, once there is one."""
        condition = expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
        message = f"no element matches {css!r}"
        return await self.run(lambda _: self._wait(timeout).until(condition, message).text)

    async def type(self, css: str, text: str, *, clear: bool = True, timeout: float | None = None) -> None:
        """Types `text` into the first element matching `css` once it is visible and enabled, after emptying it
        unless `clear` is false."""
        condition = expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, css))
        message = f"no visible, enabled element matches {css!r}"

        def type_in(_: webdriver.Chrome) -> None:
            element = self._wait(timeout).until(condition, message)
            if clear:
                element.clear()
            element.send_keys(text)

        await self.run(type_in)

    async def click(self, css: str, *, timeout: float | None = None) -> None:
        """Clicks the first element matching `css` once it is visible and enabled."""
        condition = expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, css))
        message = f"no visible, enabled element matches {css!r}"
        await self.run(lambda _: self._wait(timeout).until(condition, message).click())

    async def console(self) -> list[dict[str, Any]]:
        """The page's console entries (dicts with level, message, source, timestamp) since this Browser was made
        or last cleared. chromedriver hands each entry out once, so they are kept here."""
        entries = await self.run(lambda driver: driver.get_log("browser"))  # type: ignore[no-untyped-call]
        self._log.extend(entries)
        return list(self._log)

    async def console_errors(self) -> list[str]:
        """The messages of the SEVERE console entries (uncaught errors, console.error, failed loads), as `console`."""
        return [entry["message"] for entry in await self.console() if entry["level"] == "SEVERE"]

    async def screenshot(self, path: str | Path) -> Path:
        """A PNG of the window at `path` (the file tool shows it)."""
        path = Path(path)
        if not await self.run(lambda driver: driver.save_screenshot(str(path))):
            raise OSError(f"could not write the screenshot to {path}")
        return path

    async def clear(self) -> None:
        """Back to a blank state for the next test: the page's storage, all cookies (of every site: cookies are
        not kept apart by port) and the console log gone, at about:blank."""

        def clear(driver: webdriver.Chrome) -> None:
            driver.execute_script("try { localStorage.clear(); sessionStorage.clear() } catch (e) {}")
            driver.delete_all_cookies()  # the current site's only, by WebDriver's definition
            driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
            driver.get("about:blank")
            driver.get_log("browser")  # type: ignore[no-untyped-call]

        await self.run(clear)
        self._log.clear()

    async def close(self) -> None:
        """Quits the driver if this Browser owns it, else clears it (see `clear`)."""
        if not self.owned:
            await self.clear()
            return
        with contextlib.suppress(WebDriverException):  # already gone
            await self.run(lambda driver: driver.quit())
