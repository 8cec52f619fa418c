"""Browser security headers on every answer, and /docs served from the package under a strict CSP (issue 14,
finding 14: no security headers anywhere, and /docs loaded Swagger UI from a CDN)."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest

from helpgate.api.docs import ASSETS
from helpgate.gateway import Gateway


class _Page(HTMLParser):
    """The URLs a page loads (src, href) and its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]
        self._in_script_without_src = tag == "script" and not found.get("src")

    def handle_data(self, data: str) -> None:
        if self._in_script_without_src and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_script_without_src = False


def _directives(policy: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


async def _answers(api: httpx.AsyncClient) -> list[httpx.Response]:
    return [
        await api.get("/healthz"),
        await api.get("/api/auth/me"),  # 401
        await api.get("/api/nothing-here"),  # 404
        await api.post("/api/auth/login", json={}),  # 422
        await api.post("/api/auth/login", content=b"x" * (2 * 1024 * 1024), headers={"content-type": "text/plain"}),
        await api.get("/openapi.json"),
        await api.get("/docs"),
        await api.get("/docs/assets/swagger-ui-bundle.js"),
    ]


async def test_every_answer_carries_the_security_headers(gateway: Gateway, api: httpx.AsyncClient) -> None:
    answers = await _answers(api)
    for answer in answers:
        assert answer.headers.get("X-Content-Type-Options") == "nosniff", answer.url
        assert answer.headers.get("Referrer-Policy") == "no-referrer", answer.url
        policy = _directives(answer.headers.get("Content-Security-Policy", ""))
        assert policy.get("frame-ancestors") == ["'none'"], answer.url
    assert [answer.status_code for answer in answers] == [200, 401, 404, 422, 413, 200, 200, 200]
    api_policy = _directives(answers[0].headers["Content-Security-Policy"])
    assert api_policy["default-src"] == ["'none'"]


async def test_docs_load_nothing_from_another_host_and_run_no_inline_script(
    gateway: Gateway, api: httpx.AsyncClient
) -> None:
    docs = await api.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    page = _Page()
    page.feed(docs.text)
    assert page.urls and page.inline_scripts == 0
    assert not [url for url in page.urls if urlsplit(url).scheme or urlsplit(url).netloc or url.startswith("//")]
    assert not re.search(r"https?://", docs.text)
    for url in page.urls:  # each asset is served here
        asset = await api.get(url)
        assert asset.status_code == 200 and asset.content, url
    policy = _directives(docs.headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"] and policy["frame-ancestors"] == ["'none'"]
    assert not [source for sources in policy.values() for source in sources if "unsafe" in source or "*" in source]
    init = await api.get("/docs/assets/swagger-init.js")
    assert init.headers["content-type"].startswith("text/javascript") and "SwaggerUIBundle(" in init.text
    assert 'data-openapi-url="/openapi.json"' in docs.text
    redirect = await api.get("/docs/oauth2-redirect")
    assert redirect.headers["Content-Security-Policy"] == docs.headers["Content-Security-Policy"]
    assert "<script src=" in redirect.text and not re.search(r"https?://", redirect.text)
    assert (await api.get("/redoc")).status_code == 404  # ReDoc came from a CDN too: not served


@pytest.mark.parametrize("name", ["swagger-ui-bundle.js", "swagger-ui.css", "oauth2-redirect.js", "favicon-32x32.png"])
def test_vendored_swagger_ui_is_as_its_readme_says(name: str) -> None:
    readme = (ASSETS / "README.md").read_text()
    digest = hashlib.sha256((ASSETS / name).read_bytes()).hexdigest()
    assert f"| `{name}` | `{digest}` |" in readme
    assert (ASSETS / "LICENSE").read_text().lstrip().startswith("Apache License")
