"""JWT secret handling, access tokens, password hashing and the weak-password check."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import jwt
import pytest

from helpgate.core import security
from helpgate.core.clock import utcnow
from helpgate.core.errors import ConfigurationError, NotAuthenticated
from helpgate.core.security import TokenIssuer, hash_password, load_jwt_secret, password_weakness, verify_password


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


def test_production_hashes_at_pwdlibs_recommended_argon2_cost() -> None:
    """The test suite hashes cheaply (tests/conftest.py); what `serve` stores is argon2id at pwdlib's recommended
    cost (OWASP: 19 MiB or more of memory, two or more passes)."""
    hashed = security.PRODUCTION_HASHER.hash("a long passphrase")
    parameters = dict(part.split("=") for part in hashed.split("$")[3].split(","))
    assert hashed.startswith("$argon2id$")
    assert int(parameters["m"]) >= 19 * 1024 and int(parameters["t"]) >= 2
    assert verify_password("a long passphrase", hashed)


def test_access_token_round_trip_and_tampering() -> None:
    issuer = TokenIssuer(secret="s" * 32, issuer="helpgate", audience="api", access_ttl=timedelta(minutes=5))
    token = issuer.issue_access("user-1", utcnow())
    assert issuer.subject_of(token) == "user-1"
    header, payload, signature = token.split(".")
    with pytest.raises(NotAuthenticated):
        issuer.subject_of(f"{header}.{payload}.{signature[::-1]}")


def test_access_token_carries_every_registered_claim() -> None:
    now = utcnow()
    issuer = TokenIssuer(secret="s" * 32, issuer="helpgate", audience="api", access_ttl=timedelta(minutes=15))
    claims = jwt.decode(issuer.issue_access("user-1", now), "s" * 32, algorithms=["HS256"], audience="api")
    assert {"sub", "exp", "iat", "iss", "aud", "jti"} <= claims.keys()
    assert (claims["sub"], claims["iss"], claims["aud"]) == ("user-1", "helpgate", "api")
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert jwt.get_unverified_header(issuer.issue_access("user-1", now))["alg"] == "HS256"


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "iss", "aud", "jti"])
def test_access_token_without_a_claim_is_refused(missing: str) -> None:
    now = int(utcnow().timestamp())
    claims = {"sub": "u", "iat": now, "exp": now + 60, "iss": "helpgate", "aud": "api", "jti": "j", "typ": "access"}
    del claims[missing]
    issuer = TokenIssuer(secret="s" * 32, issuer="helpgate", audience="api", access_ttl=timedelta(minutes=5))
    with pytest.raises(NotAuthenticated):
        issuer.subject_of(jwt.encode(claims, "s" * 32, algorithm="HS256"))


def test_token_signed_with_none_is_refused() -> None:
    now = int(utcnow().timestamp())
    claims = {"sub": "u", "iat": now, "exp": now + 60, "iss": "helpgate", "aud": "api", "jti": "j", "typ": "access"}
    issuer = TokenIssuer(secret="s" * 32, issuer="helpgate", audience="api", access_ttl=timedelta(minutes=5))
    with pytest.raises(NotAuthenticated):
        issuer.subject_of(jwt.encode(claims, key="", algorithm="none"))


def test_session_epoch_travels_in_the_token_and_must_be_an_integer() -> None:
    issuer = TokenIssuer(secret="s" * 32, issuer="helpgate", audience="api", access_ttl=timedelta(minutes=5))
    assert issuer.claims_of(issuer.issue_access("u", utcnow(), session_epoch=3)).session_epoch == 3
    now = int(utcnow().timestamp())
    claims = {"sub": "u", "iat": now, "exp": now + 60, "iss": "helpgate", "aud": "api", "jti": "j", "typ": "access"}
    assert issuer.claims_of(jwt.encode(claims, "s" * 32, algorithm="HS256")).session_epoch == 0  # issued before
    for epoch in ("1", 1.0, True, None):
        with pytest.raises(NotAuthenticated):
            issuer.claims_of(jwt.encode({**claims, "sep": epoch}, "s" * 32, algorithm="HS256"))


def test_configured_secret_of_32_bytes_is_accepted(tmp_path: Path) -> None:
    assert load_jwt_secret("x" * 32, tmp_path) == "x" * 32
    with pytest.raises(ConfigurationError, match="JWT_SECRET"):
        load_jwt_secret("é" * 15, tmp_path)  # 30 bytes: bytes count, not characters


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("aaaaaaaaaaaa", "repeated"),
        ("abababababab", "repeated"),
        ("abcabcabcabc", "repeated"),
        ("1234567890", "run"),
        ("0987654321", "run"),
        ("abcdefghijkl", "run"),
        ("qwertyuiop", "run"),
        ("QWERTYUIOPASDF", "run"),
        ("password1234", "common"),
        ("P@ssw0rd2024!", "common"),
        ("1q2w3e4r5t", "common"),
        ("Welcome2025!", "common"),
        ("helpgate123", "common"),
        ("jane.doe@example.org", "email"),
        ("jane.doe1234", "email"),
        ("Jane-Doe-2024!", "email"),
    ],
)
def test_trivially_weak_passwords_are_named(password: str, reason: str) -> None:
    weakness = password_weakness(password, email="jane.doe@example.org")
    assert weakness is not None
    assert {"repeated": "repeated", "run": "run of", "common": "common", "email": "email"}[reason] in weakness


@pytest.mark.parametrize(
    "password",
    ["correct-horse-battery", "a long passphrase", "jane loves long walks", "Tr0ub4dor&3xyz", "5829-blue-kettle"],
)
def test_reasonable_passwords_pass(password: str) -> None:
    assert password_weakness(password, email="jane@example.org") is None
