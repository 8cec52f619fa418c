"""A client assertion (RFC 7523): how an app registered with a certificate proves itself to Entra ID's token
endpoint instead of sending a secret. A JWT signed with the certificate's private key (RS256), naming the token
endpoint as its audience and the client id as issuer and subject, with the certificate's thumbprints in the
`x5t#S256` (SHA-256) and `x5t` (SHA-1) headers so Entra ID knows which of the app's certificates to check it with
(it documents both). Valid for ten minutes."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LIFETIME = timedelta(minutes=10)


@dataclass(frozen=True)
class Credential:
    key: rsa.RSAPrivateKey
    thumbprint: str  # base64url of the certificate's SHA-256, without padding
    thumbprint_sha1: str  # the same of its SHA-1, which older Entra ID documents name


def load(pem: str) -> Credential:
    """The RSA private key and certificate of one PEM text; ValueError says what is missing."""
    data = pem.encode()
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ValueError("no unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the private key must be RSA (Entra ID signs with RS256)")
    try:
        certificate = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise ValueError("no PEM certificate beside the key") from None
    public = certificate.public_key()
    if not isinstance(public, rsa.RSAPublicKey) or public.public_numbers() != key.public_key().public_numbers():
        raise ValueError("the certificate is not the private key's")
    return Credential(
        key,
        _b64url(certificate.fingerprint(hashes.SHA256())),
        _b64url(certificate.fingerprint(hashes.SHA1())),  # noqa: S303 - an identifier, not a signature
    )


def _b64url(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make(pem: str, *, client_id: str, audience: str, now: datetime) -> str:
    credential = load(pem)
    claims = {
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "iat": now,
        "exp": now + LIFETIME,
    }
    headers = {"x5t#S256": credential.thumbprint, "x5t": credential.thumbprint_sha1}
    return jwt.encode(claims, credential.key, algorithm="RS256", headers=headers)
