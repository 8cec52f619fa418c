"""The outbox documents (Beanie)."""

from helpgate.outbox.models.event import EventStatus, OutboxEvent
from helpgate.outbox.models.workflow_run import RunStatus, WorkflowRun

__all__ = ["EventStatus", "OutboxEvent", "RunStatus", "WorkflowRun"]
