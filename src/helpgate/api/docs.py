"""The interactive API documentation at /docs: Swagger UI served from the package, under a strict CSP.

FastAPI's own /docs loads Swagger UI from a CDN and starts it with an inline script, and /redoc loads ReDoc
and fonts from others' hosts (issue 14, finding 14). Here the page loads swagger-ui-dist's files from
`static/swagger-ui/` (see its README: version, licence, checksums) and helpgate's `swagger-init.js`, which
reads the URLs from the page's data attributes; so the page needs nothing from another host, and no inline
script. ReDoc is not served.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
ASSETS = Path(__file__).parent / "static" / "swagger-ui"
# Swagger UI needs its own scripts and styles, the API's answers (connect-src) and images its CSS inlines as
# data: URIs; nothing from another host, no inline script or style, no frames. Checked in headless Chromium with
# every operation opened and tried: no violation reported.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
    "object-src 'none'"
)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}" data-oauth2-redirect-url="{redirect}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/swagger-init.js"></script>
</body>
</html>
"""
_REDIRECT_PAGE = """<!doctype html>
<html lang="en">
<body>
<script src="{assets}/oauth2-redirect.js"></script>
</body>
</html>
"""


def serve_docs(app: FastAPI) -> None:
    """Add /docs, its OAuth2 redirect page and its assets; create the app with `docs_url=None, redoc_url=None`."""
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = escape(str(request.scope.get("root_path", "")).rstrip("/"))
        page = _PAGE.format(
            title=escape(f"{app.title} - API"),
            assets=root + ASSETS_PATH,
            openapi=root + escape(app.openapi_url or ""),
            redirect=root + OAUTH2_REDIRECT_PATH,
        )
        return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP})

    @app.get(OAUTH2_REDIRECT_PATH, include_in_schema=False)
    async def oauth2_redirect(request: Request) -> HTMLResponse:
        root = escape(str(request.scope.get("root_path", "")).rstrip("/"))
        page = _REDIRECT_PAGE.format(assets=root + ASSETS_PATH)
        return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP})
