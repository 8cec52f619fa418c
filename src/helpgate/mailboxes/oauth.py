"""OAuth2 tokens for mailboxes: what the provider's token endpoint granted, kept encrypted, refreshed ahead of expiry.

Every grant type ends in the same token answer (RFC 6749 section 5.1), stored by `_store`: the access token, its
expiry, and the refresh token when the provider sent one (a rotated refresh token is stored at once, in the same
write; a provider that sends none keeps the old one valid). A write names the grant `version` it replaces, so two
refreshes never leave the older token in place, and a refresh is done under the lease `oauth:<mailbox id>`, so two
instances do not spend one refresh token twice (providers with reuse detection would revoke the grant).

A refusal that only an admin can mend (`invalid_grant`: consent revoked, password changed, token expired;
`invalid_client`: an expired secret) puts the mailbox, and only it, in `needs_consent` with the provider's words,
and the first instance to record it mails the admins once. No further request is made for that mailbox until an
admin connects it again or changes its client. Network failures and 5xx answers are retried by the caller (the
poller's backoff) and change nothing.

Token requests go through plain httpx2 (already used by google-genai) with the client's id and secret in the form
(`client_secret_post`, which Entra ID, Google and generic servers accept), or a signed client assertion for an app
registered with a certificate (client_assertion.py): the flows are a handful of form posts,
and msal or google-auth would each cover one provider only.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx2
from beanie import PydanticObjectId

from helpgate.core.clock import aware, utcnow
from helpgate.core.crypto import SecretBox
from helpgate.core.errors import HelpgateError
from helpgate.mailboxes import client_assertion, leases
from helpgate.mailboxes.models.mailbox import GrantState, Mailbox, MailboxAuth, OAuthFlow, OAuthGrant
from helpgate.mailboxes.oauth_providers import endpoints

log = logging.getLogger(__name__)

REFRESH_AHEAD = timedelta(minutes=5)  # a token with less left is refreshed before use
DEFAULT_LIFETIME = 3600  # seconds, when the provider does not say
# Errors of the token endpoint (RFC 6749 5.2, OpenID Connect, Entra ID) no retry mends.
NEEDS_CONSENT = frozenset(
    {
        "invalid_grant",
        "invalid_client",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "access_denied",
        "consent_required",
        "interaction_required",
        "expired_token",
    }
)
REQUEST_TIMEOUT = 20.0
LEASE_SECONDS = 30.0


class OAuthUnavailable(HelpgateError):
    """No token now: the provider could not be reached or failed (retried later), or none was granted yet."""

    http_status = 502


class NeedsConsent(HelpgateError):
    """The provider refused the grant or the client: an admin must connect the mailbox again or fix its client."""

    http_status = 409


@dataclass(frozen=True)
class TokenAnswer:
    access_token: str
    refresh_token: str | None
    expires_in: int


@dataclass(frozen=True)
class Refusal:
    """The token endpoint's error answer: `error` code and its description."""

    error: str
    description: str

    def __str__(self) -> str:
        return f"{self.error}: {self.description}" if self.description else self.error


#: Called once when a mailbox first needs consent: (mailbox, the provider's words).
ConsentAlert = Callable[[Mailbox, str], Awaitable[None]]


async def _no_alert(_mailbox: Mailbox, _reason: str) -> None:
    return None


class Tokens:
    """Access tokens for OAuth2 mailboxes, from the store or the provider; one per process."""

    def __init__(
        self,
        *,
        box: SecretBox,
        instance_id: str,
        on_needs_consent: ConsentAlert = _no_alert,
        http: httpx2.AsyncClient | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._box = box
        self._owner = instance_id
        self._alert = on_needs_consent
        self._http = http
        self._own_http = http is None
        self._now = now
        self._locks: dict[PydanticObjectId, asyncio.Lock] = {}

    async def aclose(self) -> None:
        if self._http is not None and self._own_http:
            await self._http.aclose()
            self._http = None

    def _client(self) -> httpx2.AsyncClient:
        if self._http is None:
            self._http = httpx2.AsyncClient(timeout=REQUEST_TIMEOUT, follow_redirects=False)
        return self._http

    async def access_token(self, mailbox: Mailbox, *, refused: str | None = None) -> str:
        """A valid access token for the mailbox: the stored one while it has more than REFRESH_AHEAD left, else a
        new one. `refused`: a token the server refused; a new one is asked for unless another caller has already
        replaced it. NeedsConsent or OAuthUnavailable when there is none.

        One refresh at a time per mailbox: in this process by a lock, across instances by the lease
        `oauth:<mailbox id>`; whoever waited reads the grant again and uses the token the other one stored.
        """
        assert mailbox.id is not None and mailbox.auth is MailboxAuth.OAUTH2 and mailbox.oauth is not None
        async with self._locks.setdefault(mailbox.id, asyncio.Lock()):
            for _ in range(int(LEASE_SECONDS * 2)):
                grant = await _read(mailbox)
                token = self._usable(mailbox, grant, refused)
                if token is not None:
                    return token
                name = f"oauth:{mailbox.id}"
                owner = f"{self._owner}:{uuid.uuid4().hex}"  # unique per refresh: a lease is re-entrant per owner
                if await leases.take(name, owner=owner, ttl=timedelta(seconds=LEASE_SECONDS), now=self._now()):
                    try:
                        grant = await _read(mailbox)  # another instance may have refreshed before the lease
                        return self._usable(mailbox, grant, refused) or await self._renew(mailbox, grant)
                    finally:
                        await leases.release(name, owner=owner)
                await asyncio.sleep(0.5)  # another instance is refreshing: its token will do
        raise OAuthUnavailable(f"{mailbox.address}: another instance holds the token refresh")

    def _usable(self, mailbox: Mailbox, grant: OAuthGrant, refused: str | None) -> str | None:
        """The stored access token if it will do; None when a new one is needed. Raises when none can be had."""
        assert mailbox.oauth is not None
        if grant.state is GrantState.NEEDS_CONSENT:
            raise NeedsConsent(f"{mailbox.address} needs consent again: {grant.error or 'refused'}")
        if grant.access_token_encrypted and self._lasts(grant):
            token = self._box.decrypt(grant.access_token_encrypted)
            if token != refused:
                return token
        if mailbox.oauth.flow is not OAuthFlow.CLIENT_CREDENTIALS and not grant.refresh_token_encrypted:
            raise OAuthUnavailable(f"{mailbox.address} is not connected yet: an admin connects it")
        return None

    def _lasts(self, grant: OAuthGrant) -> bool:
        return grant.expires_at is not None and aware(grant.expires_at) - self._now() > REFRESH_AHEAD

    async def _renew(self, mailbox: Mailbox, grant: OAuthGrant) -> str:
        assert mailbox.oauth is not None
        if mailbox.oauth.flow is OAuthFlow.CLIENT_CREDENTIALS:
            form = {"grant_type": "client_credentials"}
        else:
            form = {"grant_type": "refresh_token", "refresh_token": self._box.decrypt(grant.refresh_token_encrypted)}
        answer = await self.request(mailbox, form, grant=grant.version)
        await self._store(mailbox, answer, replaces=grant.version)
        log.info("oauth.refreshed mailbox=%s flow=%s", mailbox.address, mailbox.oauth.flow)
        return answer.access_token

    async def request(self, mailbox: Mailbox, form: dict[str, str], *, grant: int) -> TokenAnswer:
        """Post a grant to the mailbox's token endpoint with the client's credentials and scopes. A refusal no retry
        mends (NEEDS_CONSENT) puts grant version `grant` in needs_consent; any other is retried later."""
        answer = await self.post(mailbox, endpoints(_client_of(mailbox)).token_url, form)
        if isinstance(answer, Refusal):
            if answer.error not in NEEDS_CONSENT:
                raise OAuthUnavailable(f"the provider refused for now: {answer}")
            await self.needs_consent(mailbox, str(answer), grant=grant)
            raise NeedsConsent(f"{mailbox.address} needs consent again: {answer}")
        return token_answer(answer)

    async def post(self, mailbox: Mailbox, url: str, form: dict[str, str]) -> dict[str, Any] | Refusal:
        """A form post to one of the provider's endpoints: its JSON answer, or the Refusal a 4xx carried."""
        client = _client_of(mailbox)
        found = endpoints(client)
        body = {"client_id": client.client_id, **form}
        if "scope" not in body and form.get("grant_type") != "authorization_code":
            body["scope"] = " ".join(found.scopes)
        if client.client_certificate_encrypted:
            pem = self._box.decrypt(client.client_certificate_encrypted)
            body["client_assertion_type"] = client_assertion.ASSERTION_TYPE
            body["client_assertion"] = client_assertion.make(
                pem, client_id=client.client_id, audience=found.token_url, now=self._now()
            )
        elif client.client_secret_encrypted:
            body["client_secret"] = self._box.decrypt(client.client_secret_encrypted)
        try:
            response = await self._client().post(url, data=body, headers={"Accept": "application/json"})
        except httpx2.HTTPError as error:
            raise OAuthUnavailable(f"the token endpoint of {mailbox.address} failed: {type(error).__name__}") from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise OAuthUnavailable(f"the provider answered HTTP {response.status_code} without JSON")
        if response.status_code >= 500 or (response.status_code >= 400 and "error" not in answer):
            raise OAuthUnavailable(f"the provider answered HTTP {response.status_code}")
        if response.status_code >= 400:
            return Refusal(words(answer.get("error")), words(answer.get("error_description"), 300))
        return answer

    async def _store(
        self,
        mailbox: Mailbox,
        answer: TokenAnswer,
        *,
        replaces: int | None,
        by: str | None = None,
        also: Mapping[str, Any] | None = None,
    ) -> None:
        """Store the tokens over grant version `replaces` (None: whatever is stored); a new connection (`by`) also
        restarts the mailbox's poller. `also`: more of the same update (an audit mark)."""
        now = self._now()
        fields: dict[str, Any] = {
            "grant.state": str(GrantState.OK),
            "grant.access_token_encrypted": self._box.encrypt(answer.access_token),
            "grant.expires_at": now + timedelta(seconds=answer.expires_in),
            "grant.refreshed_at": now,
            "grant.error": None,
            "grant.error_at": None,
        }
        if answer.refresh_token:
            fields["grant.refresh_token_encrypted"] = self._box.encrypt(answer.refresh_token)
        elif by is not None:
            fields["grant.refresh_token_encrypted"] = ""
        if by is not None:
            fields["grant.connected_by"] = by
            fields["updated_at"] = now  # the supervisor restarts the poller, out of its backoff
        result = await Mailbox.get_pymongo_collection().update_one(
            {"_id": mailbox.id, **({} if replaces is None else _version(replaces))},
            {"$set": fields, "$inc": {"grant.version": 1}, **(also or {})},
        )
        if result.matched_count == 0:
            log.warning("oauth.superseded mailbox=%s: a newer grant was stored meanwhile", mailbox.address)
        await _read(mailbox)

    async def connect(
        self, mailbox: Mailbox, answer: TokenAnswer, *, by: str, also: Mapping[str, Any] | None = None
    ) -> None:
        """Store a grant an admin just gave (consent or device code), whatever was stored before, refresh token
        included (an answer without one leaves none: the old one belonged to the grant replaced). `also`: more of
        the same update (the consent's audit mark)."""
        await self._store(mailbox, answer, replaces=None, by=by, also=also)
        log.info("oauth.connected mailbox=%s by=%s", mailbox.address, by)

    async def needs_consent(self, mailbox: Mailbox, reason: str, *, grant: int) -> None:
        """Record that the provider refused grant version `grant` (a newer one, an admin's new consent, stays);
        the instance whose write flips the state alerts the admins, once."""
        now = self._now()
        result = await Mailbox.get_pymongo_collection().update_one(
            {"_id": mailbox.id, "grant.state": {"$ne": str(GrantState.NEEDS_CONSENT)}, **_version(grant)},
            {
                "$set": {"grant.state": str(GrantState.NEEDS_CONSENT), "grant.error": reason, "grant.error_at": now},
                "$inc": {"grant.version": 1},
            },
        )
        if result.modified_count == 0:
            return
        log.warning("oauth.needs_consent mailbox=%s reason=%s", mailbox.address, reason)
        try:
            await self._alert(mailbox, reason)
        except Exception:
            log.exception("oauth.alert_failed mailbox=%s", mailbox.address)


async def _read(mailbox: Mailbox) -> OAuthGrant:
    """The grant as stored now (another instance may have refreshed it since `mailbox` was read)."""
    found = await Mailbox.get_pymongo_collection().find_one({"_id": mailbox.id}, {"grant": 1})
    if found is None:
        raise OAuthUnavailable(f"mailbox {mailbox.address} was removed")
    grant = OAuthGrant.model_validate(found.get("grant") or {})
    mailbox.grant = grant
    return grant


def _version(version: int) -> dict[str, Any]:
    """The filter for grant version `version` (a mailbox stored before OAuth2 has none: version 0)."""
    if version:
        return {"grant.version": version}
    return {"$or": [{"grant.version": 0}, {"grant.version": {"$exists": False}}]}


def _client_of(mailbox: Mailbox) -> Any:
    if mailbox.oauth is None:
        raise OAuthUnavailable(f"{mailbox.address} does not log in with OAuth2")
    return mailbox.oauth


def words(value: object, limit: int = 100) -> str:
    """A provider's error text, bounded and on one line (it is shown to admins and logged)."""
    text = " ".join(str(value or "").split())
    return text[:limit]


def token_answer(answer: dict[str, Any]) -> TokenAnswer:
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise OAuthUnavailable("the provider's answer has no access_token")
    refresh = answer.get("refresh_token")
    try:
        expires_in = int(answer.get("expires_in", DEFAULT_LIFETIME))
    except (TypeError, ValueError):
        expires_in = DEFAULT_LIFETIME
    return TokenAnswer(token, refresh if isinstance(refresh, str) and refresh else None, max(expires_in, 0))
