"""The SMTP listener's TLS certificate: loaded at start, and again whenever its files change on disk.

Certificates are renewed in place (certbot, an ACME client, a secrets mount) while the listener runs, so the
files are read again each time a connection is made; their bytes, not their timestamps, tell whether they
changed. New files that do not load (a key that does not match the certificate yet, half a file) are logged
once and the previous context keeps serving until the files load.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from helpgate.core.errors import ConfigurationError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CertificateFiles:
    cert: Path
    key: Path

    def read(self) -> tuple[bytes, bytes]:
        return self.cert.read_bytes(), self.key.read_bytes()


def server_context(files: CertificateFiles) -> ssl.SSLContext:
    """A server context for STARTTLS: TLS 1.2 or later, no client certificate asked."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert, files.key)
    return context


class RenewingContext:
    """The current SSLContext for these files; `load` fails loudly at start, `current` never fails."""

    def __init__(self, files: CertificateFiles) -> None:
        self.files = files
        self._context: ssl.SSLContext | None = None
        self._loaded: tuple[bytes, bytes] | None = None  # the bytes the current context was built from
        self._refused: tuple[bytes, bytes] | None = None  # the bytes that last failed to load, logged once

    def load(self) -> None:
        """Build the first context, or raise a ConfigurationError that names the files and the settings."""
        try:
            contents = self.files.read()
            self._context = server_context(self.files)
        except (OSError, ssl.SSLError) as error:
            raise ConfigurationError(
                f"cannot use the SMTP TLS certificate {self.files.cert} with key {self.files.key} ({error}); "
                "set HELPGATE_SMTP_TLS_CERT and HELPGATE_SMTP_TLS_KEY to a PEM certificate chain and its key"
            ) from None
        self._loaded = contents
        log.info("smtp.tls_loaded cert=%s", self.files.cert)

    def current(self) -> ssl.SSLContext:
        """The context for a new connection, rebuilt first when the files changed and the new ones load."""
        assert self._context is not None, "load() first"
        try:
            contents = self.files.read()
        except OSError as error:
            log.warning("smtp.tls_unreadable cert=%s reason=%s: the previous certificate stays", self.files.cert, error)
            return self._context
        if contents in (self._loaded, self._refused):
            return self._context
        try:
            context = server_context(self.files)
        except (OSError, ssl.SSLError) as error:
            self._refused = contents
            log.warning(
                "smtp.tls_not_renewed cert=%s reason=%s: the previous certificate stays", self.files.cert, error
            )
            return self._context
        # Recorded as read before loading: if the files changed in between, the next connection loads them again.
        self._context, self._loaded, self._refused = context, contents, None
        log.info("smtp.tls_renewed cert=%s", self.files.cert)
        return context
