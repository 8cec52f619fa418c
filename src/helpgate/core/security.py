"""Passwords (argon2 via pwdlib, weak ones refused), access tokens (HS256 JWT) and opaque one-time tokens."""

from __future__ import annotations

import hashlib
import logging
import re
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

#: pwdlib's recommended argon2 parameters: what every stored password is hashed with outside the test suite.
PRODUCTION_HASHER = PasswordHash.recommended()


@dataclass
class _Hashing:
    hasher: PasswordHash
    dummy_hash: str  # verified against when an account has no password, so timing does not reveal accounts


_hashing = _Hashing(PRODUCTION_HASHER, PRODUCTION_HASHER.hash(secrets.token_urlsafe(16)))


def use_password_hasher(hasher: PasswordHash) -> None:
    """Hash new passwords with `hasher` from now on. The test suite installs a cheap argon2 (each production hash
    costs ~0.1 s of CPU, and the suite makes hundreds); nothing else calls this. Stored hashes verify whatever their
    parameters."""
    _hashing.hasher = hasher
    _hashing.dummy_hash = hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hashing.hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """Constant work whether or not the user has a password, so timing does not reveal accounts."""
    if password_hash is None:
        _hashing.hasher.verify(password, _hashing.dummy_hash)
        return False
    return _hashing.hasher.verify(password, password_hash)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def new_one_time_token() -> str:
    """A password reset token: 256 random bits, mailed once and stored only as its sha256."""
    return secrets.token_urlsafe(32)


# The most common passwords of 10+ characters in public breach lists (and their usual bases, see below).
COMMON_PASSWORDS = frozenset(
    {
        "1q2w3e4r5t",
        "1q2w3e4r5t6y",
        "1qaz2wsx3edc",
        "zaq12wsxcde",
        "qazwsxedcrfv",
        "q1w2e3r4t5",
        "a1b2c3d4e5",
        "123qweasdzxc",
        "qwerty123456",
        "1234qwerasdf",
        "iloveyou123",
        "passw0rd123",
        "letmein123",
        "abc123abc123",
        "mypassword",
        "unbelievable",
        "starwars123",
        "michael123",
        "jennifer123",
    }
)
# A password that is one of these words once digits and symbols are taken off its ends, and the usual
# letter-for-digit swaps undone, is as good as the word: "P@ssw0rd2024!" is "password".
COMMON_BASES = frozenset(
    {
        "password",
        "passwort",
        "qwerty",
        "qwertz",
        "azerty",
        "letmein",
        "welcome",
        "iloveyou",
        "admin",
        "administrator",
        "changeme",
        "secret",
        "monkey",
        "dragon",
        "football",
        "baseball",
        "soccer",
        "sunshine",
        "princess",
        "master",
        "shadow",
        "superman",
        "batman",
        "trustno",
        "login",
        "support",
        "helpdesk",
        "helpgate",
    }
)
_SEQUENCES = (
    "abcdefghijklmnopqrstuvwxyz",
    "01234567890",
    "qwertyuiopasdfghjklzxcvbnm",
    "qwertzuiopasdfghjklyxcvbnm",
    "azertyuiopqsdfghjklmwxcvbn",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
)
_NOT_LETTERS = re.compile(r"[^a-z]")
_UNLEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})


def password_weakness(password: str, *, email: str | None = None) -> str | None:
    """Why a password is trivially guessable (None when it is not): a character or a short run of them
    repeated, a run of the alphabet, digits or a keyboard row, one of the most common passwords, or the
    account's own email address (or its local part) with little added. Length is checked elsewhere."""
    lowered = password.lower()
    if any(lowered == lowered[:size] * (len(lowered) // size) + lowered[: len(lowered) % size] for size in (1, 2, 3)):
        return "password is a few characters repeated"
    if any(lowered in sequence or lowered in sequence[::-1] for sequence in _SEQUENCES):
        return "password is a run of letters, digits or keys (like 1234567890 or qwertyuiop)"
    base = lowered.strip("0123456789!@#$%^&*()_+-=.,;:?~ ").translate(_UNLEET)
    if lowered in COMMON_PASSWORDS or base in COMMON_BASES or lowered.translate(_UNLEET) in COMMON_BASES:
        return "password is one of the most common passwords"
    if email and _close_to_email(lowered, email.lower()):
        return "password is too close to the email address"
    return None


def _close_to_email(lowered: str, email: str) -> bool:
    """The address or its local part with fewer than 4 letters added ("jane.doe1234", "Jane-Doe-2024!")."""
    local = email.partition("@")[0]
    rest = lowered.replace(email, "")
    if len(local) >= 3:
        rest = rest.replace(local, "")
    added = _NOT_LETTERS.sub("", rest)
    letters = _NOT_LETTERS.sub("", local)
    return (rest != lowered and len(added) < 4) or (len(letters) >= 3 and _NOT_LETTERS.sub("", lowered) == letters)


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
class AccessClaims:
    subject: str  # the user id
    session_epoch: int  # the account's session epoch when it was issued (0 for tokens without the claim)
    session: str | None = None  # the session (refresh token family) it was issued for


@dataclass(frozen=True)
class TokenIssuer:
    secret: str
    issuer: str
    audience: str
    access_ttl: timedelta

    def issue_access(self, subject: str, now: datetime, *, session_epoch: int = 0, session: str | None = None) -> str:
        claims: dict[str, object] = {
            "sub": subject,
            "iat": int(now.timestamp()),
            "exp": int((now + self.access_ttl).timestamp()),
            "iss": self.issuer,
            "aud": self.audience,
            "jti": uuid.uuid4().hex,
            "typ": "access",
            "sep": session_epoch,
        }
        if session is not None:
            claims["sid"] = session
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def subject_of(self, token: str) -> str:
        """The user id an access token names; NotAuthenticated for anything not valid right now."""
        return self.claims_of(token).subject

    def claims_of(self, token: str) -> AccessClaims:
        """Who an access token names and when it was issued; NotAuthenticated for anything not valid now."""
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
        epoch = claims.get("sep", 0)
        session = claims.get("sid")
        if claims.get("typ") != "access" or type(epoch) is not int or not isinstance(session, str | None):
            raise NotAuthenticated("invalid token")
        return AccessClaims(subject=str(claims["sub"]), session_epoch=epoch, session=session)
