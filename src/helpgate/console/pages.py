"""Rendering the console's pages: Jinja2 templates (escaped by default) answered with the headers a page of
staff data needs: a Content-Security-Policy that lets nothing but our own files run or load, no framing,
no caching, and a referrer kept to our origin (a form post must carry its Origin, which `no-referrer` would
blank out).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from helpgate.console.session import Viewer, keep

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

#: No inline script or style anywhere; mail HTML is shown in sandboxed `srcdoc` frames, which inherit this
#: policy (so their images load only from data: URLs) and add their own.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


def link_to(path: str, values: Mapping[str, object]) -> str:
    """`path` with the values given as its query, leaving out the empty ones (the queue's and lists' links)."""
    return f"{path}?" + urlencode({name: value for name, value in values.items() if value not in ("", None)})


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else ""


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["when"] = _when
    return environment


ENVIRONMENT = _environment()


def render(template: str, **context: Any) -> str:
    return ENVIRONMENT.get_template(template).render(**context)


def page(
    request: Request, viewer: Viewer | None, template: str, *, status: int = 200, csp: str | None = None, **context: Any
) -> Response:
    """A page (or, for htmx, the part of one it asked for) with the console's headers; `csp` replaces the
    policy (a ticket showing one message's remote images)."""
    context.setdefault("viewer", viewer)
    context.setdefault("path", request.url.path)
    body = render(template, **context)
    headers = HEADERS if csp is None else {**HEADERS, "Content-Security-Policy": csp}
    return keep(HTMLResponse(body, status_code=status, headers=headers), request, viewer)


def redirect(request: Request, viewer: Viewer | None, to: str) -> Response:
    """After a form post: see the page it changed (303, so a reload does not post again)."""
    return keep(RedirectResponse(to, status_code=303, headers=HEADERS), request, viewer)


def sign_in(request: Request) -> Response:
    """To the login form, coming back here after; htmx follows HX-Redirect instead of swapping the form in."""
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    to = f"/login?next={quote(back, safe='')}"
    if request.headers.get("hx-request"):
        return Response(status_code=401, headers={**HEADERS, "HX-Redirect": to})
    return RedirectResponse(to, status_code=303, headers=HEADERS)
