"""The mail out documents (Beanie)."""

from helpgate.mail_out.models.outbound import DeliveryStatus, OutboundMail, Transition
from helpgate.mail_out.models.suppression import Suppression

__all__ = ["DeliveryStatus", "OutboundMail", "Suppression", "Transition"]
