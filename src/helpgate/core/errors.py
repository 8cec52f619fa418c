"""The error hierarchy: each error knows the HTTP status it maps to at the API edge."""

from __future__ import annotations


class HelpgateError(Exception):
    """Base of every error helpgate raises on purpose."""

    http_status = 500

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(HelpgateError):
    http_status = 404


class Conflict(HelpgateError):
    http_status = 409


class InvalidInput(HelpgateError):
    http_status = 422


class NotAuthenticated(HelpgateError):
    http_status = 401


class Forbidden(HelpgateError):
    http_status = 403


class TooManyAttempts(HelpgateError):
    """Over a rate limit: try again in `retry_after` seconds (HTTP 429 with Retry-After)."""

    http_status = 429

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class InvalidResetToken(HelpgateError):
    """A password reset (or sign-up) code that is unknown, spent or expired."""

    http_status = 400


class ConfigurationError(HelpgateError):
    """The operator's settings cannot work; reported at start, before anything listens."""


class StorageUnavailable(HelpgateError):
    """The store could not be reached or refused a write: retry later (SMTP 451)."""

    http_status = 503


class PayloadTooLarge(HelpgateError):
    http_status = 413


class ContentPurged(HelpgateError):
    """The bytes (raw mail, an attachment) were removed by retention; the record that they existed stays."""

    http_status = 410


class DeliveryError(HelpgateError):
    """A mail server (or the file transport) did not take a mail; `reply` is the server's answer, if any."""

    def __init__(self, detail: str, *, reply: str | None = None) -> None:
        super().__init__(detail)
        self.reply = reply


class TemporaryDeliveryError(DeliveryError):
    """Try again later: a 4xx answer, a refused or dropped connection, a timeout."""


class PermanentDeliveryError(DeliveryError):
    """Never try again: the server refused the mail for good (5xx)."""
