"""Connecting an OAuth2 mailbox: an admin's consent in the browser (authorization code with PKCE, RFC 7636), or a
code typed on another device (device authorization, RFC 8628) for a server without a browser.

The consent URL carries a `state` of 256 random bits. Only its sha256 is stored, with the mailbox, the admin who
started it and the PKCE verifier (encrypted), for CONSENT_MINUTES. The provider's redirect carries no Bearer
token, so the callback trusts nothing but that record: it is deleted as it is read (a state works once), and the
grant is stored only while its admin is still an active admin and the mailbox still exists.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from helpgate.accounts import users
from helpgate.audit import audit
from helpgate.core.clock import aware, utcnow
from helpgate.core.crypto import SecretBox
from helpgate.core.errors import HelpgateError, InvalidInput
from helpgate.core.security import hash_token
from helpgate.mailboxes import oauth_providers
from helpgate.mailboxes.models.consent import OAuthConsent
from helpgate.mailboxes.models.mailbox import Mailbox, MailboxAuth, OAuthFlow
from helpgate.mailboxes.oauth import OAuthUnavailable, Refusal, TokenAnswer, Tokens, token_answer, words
from helpgate.mailboxes.oauth_providers import endpoints
from helpgate.models import AuditAction, Role, User

log = logging.getLogger(__name__)

CONSENT_MINUTES = 15
CALLBACK_PATH = "/api/mailboxes/oauth/callback"


class ConsentFailed(HelpgateError):
    """The callback cannot store a grant: unknown, used or expired state, a refusal, a changed mailbox."""

    http_status = 400


def redirect_uri(public_url: str) -> str:
    return public_url.rstrip("/") + CALLBACK_PATH


def _oauth_mailbox(mailbox: Mailbox, flow: OAuthFlow) -> None:
    if mailbox.auth is not MailboxAuth.OAUTH2 or mailbox.oauth is None:
        raise InvalidInput(f"{mailbox.address} logs in with a password, not OAuth2")
    if mailbox.oauth.flow is not flow:
        raise InvalidInput(f"{mailbox.address} is set up for the {mailbox.oauth.flow} flow, not {flow}")


async def start(mailbox: Mailbox, *, admin: User, box: SecretBox, public_url: str, return_to: str | None = None) -> str:
    """The provider's consent URL for this mailbox; the admin opens it in a browser. `return_to`: a path of ours
    the callback sends the browser on to once the grant is stored (else it answers JSON)."""
    if return_to is not None and not (return_to.startswith("/") and return_to[1:2] not in ("/", "\\")):
        raise InvalidInput("return_to must be a path on this server")
    _oauth_mailbox(mailbox, OAuthFlow.AUTHORIZATION_CODE)
    assert mailbox.oauth is not None and mailbox.id is not None and admin.id is not None
    back = redirect_uri(public_url)
    if not oauth_providers.protected(back):
        # The provider would refuse the redirect URI with words of its own, after the admin signed in.
        raise InvalidInput(
            f"the provider cannot send the browser back to {back}: set HELPGATE_PUBLIC_URL to the https address "
            "people reach helpgate at, and register that address's /api/mailboxes/oauth/callback with the provider"
        )
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters, within RFC 7636's 43-128
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    now = utcnow()
    await OAuthConsent(
        id=hash_token(state),
        mailbox_id=mailbox.id,
        admin_id=admin.id,
        verifier_encrypted=box.encrypt(verifier),
        redirect_uri=back,
        return_to=return_to,
        expires_at=now + timedelta(minutes=CONSENT_MINUTES),
        created_at=now,
    ).insert()
    found = endpoints(mailbox.oauth)
    query = {
        "client_id": mailbox.oauth.client_id,
        "response_type": "code",
        "redirect_uri": back,
        "scope": " ".join(found.scopes),
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **dict(found.authorize_extra),
    }
    # No login_hint: a shared mailbox cannot sign in, the admin who has access to it does.
    log.info("oauth.consent_started mailbox=%s admin=%s", mailbox.address, admin.id)
    joiner = "&" if "?" in found.authorization_url else "?"
    return f"{found.authorization_url}{joiner}{urlencode(query)}"


@dataclass(frozen=True)
class Connected:
    mailbox: Mailbox
    return_to: str | None


async def finish(
    *, state: str, code: str | None, error: str | None, error_description: str | None, tokens: Tokens, box: SecretBox
) -> Connected:
    """The provider sent the admin back: exchange the code and store the grant. ConsentFailed says why not."""
    consent = await OAuthConsent.get_pymongo_collection().find_one_and_delete({"_id": hash_token(state)})
    if consent is None:
        raise ConsentFailed("unknown or already used state: start the consent again")
    if aware(consent["expires_at"]) < utcnow():
        raise ConsentFailed("the consent took too long: start it again")
    mailbox = await Mailbox.get(consent["mailbox_id"])
    if mailbox is None:
        raise ConsentFailed("the mailbox was removed meanwhile")
    admin = await users.get(consent["admin_id"])
    if admin is None or not admin.active or admin.role is not Role.ADMIN:
        raise ConsentFailed("the admin who started the consent is no longer an admin")
    _oauth_mailbox(mailbox, OAuthFlow.AUTHORIZATION_CODE)
    if error or not code:
        reason = str(Refusal(words(error or "no code"), words(error_description, 300)))
        log.warning("oauth.consent_refused mailbox=%s reason=%s", mailbox.address, reason)
        raise ConsentFailed(f"the provider did not grant access: {reason}")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": consent["redirect_uri"],
        "code_verifier": box.decrypt(consent["verifier_encrypted"]),
    }
    assert mailbox.oauth is not None
    answer = await tokens.post(mailbox, endpoints(mailbox.oauth).token_url, form)
    if isinstance(answer, Refusal):
        raise ConsentFailed(f"the provider did not grant access: {answer}")
    await _connected(tokens, mailbox, token_answer(answer), by=admin)
    return Connected(mailbox, consent.get("return_to"))


@dataclass(frozen=True)
class DeviceCode:
    """What the admin is shown: open `verification_uri` and type `user_code` before `expires_in` seconds pass."""

    user_code: str
    verification_uri: str
    message: str
    expires_in: int
    interval: int
    device_code: str


async def start_device(mailbox: Mailbox, *, tokens: Tokens) -> DeviceCode:
    _oauth_mailbox(mailbox, OAuthFlow.DEVICE_CODE)
    assert mailbox.oauth is not None
    answer = await tokens.post(mailbox, endpoints(mailbox.oauth).device_authorization_url, {})
    if isinstance(answer, Refusal):
        raise ConsentFailed(f"the provider refused the device code: {answer}")
    try:
        uri = str(answer.get("verification_uri") or answer["verification_url"])  # Google's older name
        return DeviceCode(
            user_code=str(answer["user_code"]),
            verification_uri=uri,
            message=words(answer.get("message") or f"Open {uri} and enter {answer['user_code']}", 300),
            expires_in=int(answer.get("expires_in", 900)),
            interval=max(int(answer.get("interval", 5)), 1),
            device_code=str(answer["device_code"]),
        )
    except (KeyError, TypeError, ValueError):
        raise OAuthUnavailable("the provider's device answer lacks user_code, device_code or a URL") from None


async def wait_device(mailbox: Mailbox, device: DeviceCode, *, tokens: Tokens, by: User | str) -> Mailbox:
    """Poll the token endpoint until the admin has typed the code (or refused, or the code expired)."""
    assert mailbox.oauth is not None
    url = endpoints(mailbox.oauth).token_url
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": device.device_code}
    interval = device.interval
    deadline = asyncio.get_running_loop().time() + device.expires_in
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(interval)
        answer = await tokens.post(mailbox, url, form)
        if isinstance(answer, Refusal):
            if answer.error == "authorization_pending":
                continue
            if answer.error == "slow_down":
                interval += 5
                continue
            raise ConsentFailed(f"the provider did not grant access: {answer}")
        await _connected(tokens, mailbox, token_answer(answer), by=by)
        return mailbox
    raise ConsentFailed("the code expired before it was entered: connect again")


async def _connected(tokens: Tokens, mailbox: Mailbox, answer: TokenAnswer, *, by: User | str) -> None:
    """Store the grant and its audit entry as one unit (audit.begin: the grant's write carries the entry's mark)."""
    entry = await audit.begin(
        actor=by,
        action=AuditAction.MAILBOX_CONNECTED,
        target_type="mailbox",
        target_id=str(mailbox.id),
        target_label=mailbox.address,
        changes={"flow": str(mailbox.oauth.flow) if mailbox.oauth else None},
    )
    await tokens.connect(mailbox, answer, by=by if isinstance(by, str) else str(by.id), also=audit.marked(entry))
    await audit.confirm(entry)
