"""Where each OAuth2 provider's endpoints are, and the scopes a mailbox asks for.

Microsoft's endpoints are the tenant's own (`login.microsoftonline.com/<tenant>/...`), never `/common`: app-only
tokens need the tenant, and a work mailbox belongs to one. Any endpoint set on the mailbox wins over these (a
national cloud such as `login.microsoftonline.us`, or a generic provider, which has no defaults).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from helpgate.core.errors import InvalidInput
from helpgate.mailboxes.models.mailbox import OAuthClient, OAuthFlow, OAuthProvider

MICROSOFT_LOGIN = "https://login.microsoftonline.com"
MICROSOFT_DELEGATED = (
    "https://outlook.office.com/IMAP.AccessAsUser.All",
    "https://outlook.office.com/SMTP.Send",
    "offline_access",
)
MICROSOFT_APP_ONLY = ("https://outlook.office365.com/.default",)
GOOGLE_AUTHORIZE = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN = "https://oauth2.googleapis.com/token"  # noqa: S105 - an endpoint, not a secret
GOOGLE_SCOPES = ("https://mail.google.com/",)


@dataclass(frozen=True)
class Endpoints:
    authorization_url: str
    token_url: str
    device_authorization_url: str
    scopes: tuple[str, ...]
    # extra parameters of the consent URL: Google hands out a refresh token only when asked for offline access
    authorize_extra: tuple[tuple[str, str], ...] = ()


def endpoints(client: OAuthClient) -> Endpoints:
    """The endpoints and scopes for this client: the provider's, with whatever the mailbox sets instead."""
    if client.provider is OAuthProvider.MICROSOFT:
        base = f"{MICROSOFT_LOGIN}/{client.tenant_id}/oauth2/v2.0"
        app_only = client.flow is OAuthFlow.CLIENT_CREDENTIALS
        known = Endpoints(
            f"{base}/authorize",
            f"{base}/token",
            f"{base}/devicecode",
            MICROSOFT_APP_ONLY if app_only else MICROSOFT_DELEGATED,
        )
    elif client.provider is OAuthProvider.GOOGLE:
        known = Endpoints(
            GOOGLE_AUTHORIZE, GOOGLE_TOKEN, "", GOOGLE_SCOPES, (("access_type", "offline"), ("prompt", "consent"))
        )
    else:
        known = Endpoints("", "", "", ())
    return Endpoints(
        client.authorization_url or known.authorization_url,
        client.token_url or known.token_url,
        client.device_authorization_url or known.device_authorization_url,
        tuple(client.scopes) or known.scopes,
        known.authorize_extra,
    )


def check(client: OAuthClient, *, has_secret: bool) -> None:
    """InvalidInput when this client cannot work: what is missing, in the admin's words."""
    if client.provider is OAuthProvider.MICROSOFT and client.tenant_id.strip().lower() in ("", "common", "consumers"):
        raise InvalidInput("a Microsoft mailbox needs its tenant id (the directory id or domain), not 'common'")
    if client.provider is OAuthProvider.GOOGLE and client.flow is OAuthFlow.DEVICE_CODE:
        raise InvalidInput("Google's device flow does not grant the mail scope: use authorization_code")
    if client.flow is OAuthFlow.CLIENT_CREDENTIALS:
        if client.provider is OAuthProvider.GOOGLE:
            raise InvalidInput("Google has no app-only access to IMAP: use authorization_code")
        if not has_secret:
            raise InvalidInput("client_credentials needs the client secret or certificate")
    found = endpoints(client)
    needed = {
        OAuthFlow.AUTHORIZATION_CODE: ("authorization_url", found.authorization_url),
        OAuthFlow.DEVICE_CODE: ("device_authorization_url", found.device_authorization_url),
        OAuthFlow.CLIENT_CREDENTIALS: ("token_url", found.token_url),
    }
    name, url = needed[client.flow]
    missing = [field for field, value in ((name, url), ("token_url", found.token_url)) if not value]
    if missing:
        raise InvalidInput(f"a generic provider needs {' and '.join(sorted(set(missing)))}")
    if not found.scopes:
        raise InvalidInput("a generic provider needs its scopes")
    for field, url in (
        ("authorization_url", found.authorization_url),
        ("token_url", found.token_url),
        ("device_authorization_url", found.device_authorization_url),
    ):
        if url and not protected(url):
            raise InvalidInput(f"{field} must be https (plain http only on this host): tokens and secrets go there")


def protected(url: str) -> bool:
    """https, or plain http to this host only (a test server, a provider on the same machine)."""
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"))


def check_certificate(pem: str) -> None:
    """InvalidInput unless `pem` holds an RSA private key and a certificate (Entra ID's certificate credentials)."""
    from helpgate.mailboxes.client_assertion import load

    try:
        load(pem)
    except ValueError as error:
        raise InvalidInput(f"client_certificate: {error}") from None
