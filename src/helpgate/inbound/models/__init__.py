"""The inbound documents (Beanie)."""

from helpgate.inbound.models.raw_message import RawMessage, RawStatus

__all__ = ["RawMessage", "RawStatus"]
