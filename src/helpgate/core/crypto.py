"""Encryption at rest for secrets helpgate must be able to read back (IMAP passwords): Fernet."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from helpgate.core.errors import ConfigurationError


class SecretBox:
    """Fernet with a key derived from the installation's secret key (any length of at least 32 bytes)."""

    def __init__(self, secret_key: str) -> None:
        if len(secret_key.encode()) < 32:
            raise ConfigurationError("the secret key must be at least 32 bytes long")
        digest = hashlib.sha256(b"helpgate-secret-box\0" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ConfigurationError("a stored secret cannot be decrypted: was the secret key changed?") from None
