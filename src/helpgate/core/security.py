"""Passwords (argon2 via pwdlib), access tokens (HS256 JWT) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import jwt
from pwdlib import PasswordHash

from helpgate.core.errors import ConfigurationError, NotAuthenticated

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32
JWT_SECRET_FILE = "jwt_secret"  # noqa: S105 - a file name
SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name

_hasher = PasswordHash.recommended()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """Constant work whether or not the user has a password, so timing does not reveal accounts."""
    if password_hash is None:
        _hasher.verify(password, _DUMMY_HASH)
        return False
    return _hasher.verify(password, password_hash)


_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def load_secret(configured: str | None, data_dir: Path, *, name: str, variable: str) -> str:
    """The configured secret, or one generated once and kept in `<data dir>/<name>` (with a warning)."""
    if configured:
        if len(configured.encode()) < MIN_SECRET_BYTES:
            raise ConfigurationError(f"{variable} must be at least {MIN_SECRET_BYTES} bytes long")
        return configured
    path = data_dir / name
    if path.exists():
        secret = path.read_text().strip()
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(secret + "\n")
        log.warning("security.secret_generated path=%s: set %s in production", path, variable)
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigurationError(f"{path} holds a secret shorter than {MIN_SECRET_BYTES} bytes")
    return secret


def load_jwt_secret(configured: str | None, data_dir: Path) -> str:
    return load_secret(configured, data_dir, name=JWT_SECRET_FILE, variable="JWT_SECRET")


def load_secret_key(configured: str | None, data_dir: Path) -> str:
    return load_secret(configured, data_dir, name=SECRET_KEY_FILE, variable="HELPGATE_SECRET_KEY")


@dataclass(frozen=True)
class TokenIssuer:
    secret: str
    issuer: str
    audience: str
    access_ttl: timedelta

    def issue_access(self, subject: str, now: datetime) -> str:
        claims = {
            "sub": subject,
            "iat": int(now.timestamp()),
            "exp": int((now + self.access_ttl).timestamp()),
            "iss": self.issuer,
            "aud": self.audience,
            "jti": uuid.uuid4().hex,
            "typ": "access",
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def subject_of(self, token: str) -> str:
        """The user id an access token names; NotAuthenticated for anything not valid right now."""
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("token expired") from None
        except jwt.InvalidTokenError:
            raise NotAuthenticated("invalid token") from None
        if claims.get("typ") != "access":
            raise NotAuthenticated("invalid token")
        return str(claims["sub"])
