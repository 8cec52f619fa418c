"""JWT secret handling and password hashing."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest

from helpgate.core.errors import ConfigurationError, NotAuthenticated
from helpgate.core.models.clock import utcnow
from helpgate.core.security import TokenIssuer, hash_password, load_jwt_secret, verify_password


def test_short_configured_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        load_jwt_secret("too-short", tmp_path)


def test_missing_secret_is_generated_once_and_kept_private(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = load_jwt_secret(None, tmp_path)
    second = load_jwt_secret(None, tmp_path)
    assert first == second and len(first) >= 32
    assert stat.S_IMODE((tmp_path / "jwt_secret").stat().st_mode) == 0o600
    assert [r.message for r in caplog.records if "secret_generated" in r.message and "JWT_SECRET" in r.message]


def test_password_hash_is_argon2_and_verifies() -> None:
    hashed = hash_password("a long passphrase")
    assert hashed.startswith("$argon2id$")
    assert verify_password("a long passphrase", hashed)
    assert not verify_password("another passphrase", hashed)
    assert not verify_password("a long passphrase", None)


def test_access_token_round_trip_and_tampering() -> None:
    issuer = TokenIssuer(secret="s" * 32, issuer="helpgate", audience="api", access_ttl=timedelta(minutes=5))
    token = issuer.issue_access("user-1", utcnow())
    assert issuer.subject_of(token) == "user-1"
    header, payload, signature = token.split(".")
    with pytest.raises(NotAuthenticated):
        issuer.subject_of(f"{header}.{payload}.{signature[::-1]}")
