"""helpgate: an email-first support ticketing gateway."""

__version__ = "0.1.0"
