"""A fake OAuth2 identity provider on 127.0.0.1 (a small Starlette app under uvicorn, in the test's event loop).

It plays Entra ID's or Google's part for helpgate and Dovecot: consent (`/authorize`, which consents at once and
redirects back with a code, PKCE checked at the token endpoint), device codes, client credentials, refresh tokens
that rotate on every use, and RFC 7662 introspection for Dovecot's oauth2 passdb. A test can expire every access
token (`expire_access_tokens`), revoke every grant (`revoke`), refuse the next consent, and read what was asked.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENT_ID = "helpgate-test-app"
CLIENT_SECRET = "fake-client-secret-value"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
USER = "test"  # the Dovecot user every grant is for (introspection answers it as `email`)
SCOPE = "imap smtp offline"


@dataclass
class Grant:
    user: str
    scope: str
    refresh_token: str | None


@dataclass
class FakeIdP:
    access_ttl: int = 3600  # what `expires_in` says
    deny_next_consent: bool = False
    certificate_pem: str | None = None  # the app's certificate credential: client assertions signed for it pass
    refuse_next: str | None = None  # the next token request is refused with this error code (then it is reset)
    device_pending_polls: int = 1  # answers of authorization_pending before a device code is approved
    requests: list[dict[str, Any]] = field(default_factory=list)  # token endpoint forms, in order
    port: int = 0
    _codes: dict[str, dict[str, str]] = field(default_factory=dict)
    _devices: dict[str, int] = field(default_factory=dict)
    _access: dict[str, str] = field(default_factory=dict)  # access token -> user
    _refresh: dict[str, Grant] = field(default_factory=dict)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def introspection_url(self) -> str:
        return f"{self.base}/introspect"

    def endpoints(self) -> dict[str, Any]:
        """The `oauth` fields of a generic-provider mailbox pointed at this fake."""
        return {
            "provider": "generic",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "authorization_url": f"{self.base}/authorize",
            "token_url": f"{self.base}/token",
            "device_authorization_url": f"{self.base}/devicecode",
            "scopes": SCOPE.split(),
        }

    def grants(self, grant_type: str) -> list[dict[str, Any]]:
        return [form for form in self.requests if form.get("grant_type") == grant_type]

    def issued(self) -> set[str]:
        """Every access token still valid: a test checks none of them shows up where it must not."""
        return set(self._access)

    def expire_access_tokens(self) -> None:
        self._access.clear()

    def revoke(self) -> None:
        self._access.clear()
        self._refresh.clear()

    async def start(self) -> FakeIdP:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)  # connections wait in the backlog until uvicorn accepts them
        self.port = int(sock.getsockname()[1])
        app = Starlette(
            routes=[
                Route("/authorize", self._authorize),
                Route("/token", self._token, methods=["POST"]),
                Route("/devicecode", self._devicecode, methods=["POST"]),
                Route("/introspect", self._introspect, methods=["POST"]),
            ]
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        return self

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task

    async def _authorize(self, request: Request) -> Response:
        query = request.query_params
        back = query["redirect_uri"]
        if self.deny_next_consent:
            self.deny_next_consent = False
            refused = {"error": "access_denied", "error_description": "The user declined", "state": query["state"]}
            return RedirectResponse(f"{back}?{urlencode(refused)}", status_code=302)
        if query.get("client_id") != CLIENT_ID or query.get("code_challenge_method") != "S256":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(16)
        self._codes[code] = {
            "challenge": query["code_challenge"],
            "redirect_uri": back,
            "scope": query.get("scope", ""),
        }
        return RedirectResponse(f"{back}?{urlencode({'code': code, 'state': query['state']})}", status_code=302)

    def _issue(self, user: str, scope: str, *, refresh: bool = True) -> dict[str, Any]:
        access = "at-" + secrets.token_urlsafe(24)
        self._access[access] = user
        answer: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": self.access_ttl}
        if refresh:
            token = "rt-" + secrets.token_urlsafe(24)
            self._refresh[token] = Grant(user, scope, token)
            answer["refresh_token"] = token
        return answer

    @staticmethod
    def _refused(error: str, description: str = "") -> JSONResponse:
        return JSONResponse({"error": error, "error_description": description}, status_code=400)

    async def _token(self, request: Request) -> Response:
        form = dict((await request.form()).items())
        self.requests.append({key: str(value) for key, value in form.items()})
        if form.get("client_id") != CLIENT_ID:
            return self._refused("invalid_client", "AADSTS700016: application not found")
        if self.refuse_next is not None:
            error, self.refuse_next = self.refuse_next, None
            return self._refused(error, "AADSTS50196: the server terminated an operation because it hit a loop")
        if not self._client_authenticated(form):
            return self._refused("invalid_client", "AADSTS7000215: invalid client secret or assertion")
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            pending = self._codes.pop(str(form.get("code")), None)
            if pending is None or pending["redirect_uri"] != form.get("redirect_uri"):
                return self._refused("invalid_grant", "unknown code or redirect_uri")
            digest = hashlib.sha256(str(form.get("code_verifier", "")).encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != pending["challenge"]:
                return self._refused("invalid_grant", "PKCE verification failed")
            return JSONResponse(self._issue(USER, pending["scope"]))
        if grant_type == "refresh_token":
            grant = self._refresh.pop(str(form.get("refresh_token")), None)  # rotated: the old one is spent
            if grant is None:
                return self._refused("invalid_grant", "AADSTS70000: the grant was revoked")
            return JSONResponse(self._issue(grant.user, grant.scope))
        if grant_type == "client_credentials":
            if form.get("client_secret") != CLIENT_SECRET and "client_assertion" not in form:
                return self._refused("invalid_client", "AADSTS7000222: the client secret has expired")
            return JSONResponse(self._issue(USER, str(form.get("scope", "")), refresh=False))
        if grant_type == "urn:ietf:params:oauth:grant-type:device_code":
            device = str(form.get("device_code"))
            if device not in self._devices:
                return self._refused("expired_token")
            if self._devices[device] > 0:
                self._devices[device] -= 1
                return self._refused("authorization_pending")
            del self._devices[device]
            return JSONResponse(self._issue(USER, SCOPE))
        return self._refused("unsupported_grant_type")

    def _client_authenticated(self, form: Any) -> bool:
        """A client assertion, when one is sent, must be signed by the app's certificate, for this endpoint."""
        assertion = form.get("client_assertion")
        if assertion is None:
            return True
        if self.certificate_pem is None or form.get("client_assertion_type") != ASSERTION_TYPE:
            return False
        certificate = x509.load_pem_x509_certificate(self.certificate_pem.encode())
        public = certificate.public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        thumbprint = base64.urlsafe_b64encode(certificate.fingerprint(hashes.SHA256())).rstrip(b"=").decode()
        try:
            if jwt.get_unverified_header(str(assertion)).get("x5t#S256") != thumbprint:
                return False
            claims = jwt.decode(
                str(assertion), public, algorithms=["RS256"], audience=f"{self.base}/token",
                issuer=CLIENT_ID, options={"require": ["exp", "nbf", "jti", "sub"]},
            )  # fmt: skip
        except jwt.InvalidTokenError:
            return False
        return bool(claims["sub"] == CLIENT_ID)

    async def _devicecode(self, request: Request) -> Response:
        form = await request.form()
        if form.get("client_id") != CLIENT_ID:
            return self._refused("invalid_client")
        device = secrets.token_urlsafe(16)
        self._devices[device] = self.device_pending_polls
        return JSONResponse(
            {
                "device_code": device,
                "user_code": "FAKE-CODE",
                "verification_uri": f"{self.base}/device",
                "expires_in": 60,
                "interval": 1,
                "message": f"To sign in, open {self.base}/device and enter the code FAKE-CODE.",
            }
        )

    async def _introspect(self, request: Request) -> Response:
        token = str((await request.form()).get("token", ""))
        user = self._access.get(token)
        return JSONResponse({"active": True, "email": user} if user else {"active": False})
