"""The workflow machinery of one gateway: the outbox relay, and the local runner or Inngest behind it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from helpgate.core.clock import utcnow
from helpgate.core.settings import OPENAI_DEFAULT_BASE_URL, Settings, TriageProvider
from helpgate.mail_out.outgoing import Outgoing
from helpgate.outbox import events
from helpgate.tickets.routing import Targets
from helpgate.workflows import functions, inngest_app
from helpgate.workflows.ai import learning
from helpgate.workflows.ai.gemini import GeminiTriager
from helpgate.workflows.ai.openai_compat import OpenAITriager
from helpgate.workflows.ai.provider import Provider
from helpgate.workflows.relay import Relay
from helpgate.workflows.runner import LocalRunner
from helpgate.workflows.step import Event

log = logging.getLogger(__name__)

_OFF = {"", "0", "false", "no", "off"}


def targets_from(settings: Settings) -> Targets:
    return Targets(
        high=timedelta(hours=settings.sla_high_hours),
        medium=timedelta(hours=settings.sla_medium_hours),
        low=timedelta(hours=settings.sla_low_hours),
    )


def retrain_every(settings: Settings) -> timedelta | None:
    """How often the learned triage is trained; None: it is off (HELPGATE_TRIAGE_RETRAIN_HOURS=0)."""
    return timedelta(hours=settings.triage_retrain_hours) if settings.triage_retrain_hours else None


def triager_from(settings: Settings) -> Provider | None:
    """The AI provider the settings choose (Settings.triage_by), or None for the heuristic triage."""
    gemini_key, openai_key = settings.gemini_api_key, settings.openai_api_key  # Settings checked the one chosen
    match settings.triage_by:
        case TriageProvider.GEMINI:
            return GeminiTriager(
                gemini_key.get_secret_value() if gemini_key is not None else "",
                settings.gemini_model,
                timeout_seconds=settings.triage_timeout_seconds,
                attempts=settings.triage_attempts,
                base_url=settings.gemini_base_url,
            )
        case TriageProvider.OPENAI:
            return OpenAITriager(
                openai_key.get_secret_value() if openai_key is not None else None,
                settings.openai_model,
                base_url=settings.openai_base_url or OPENAI_DEFAULT_BASE_URL,
                timeout_seconds=settings.triage_timeout_seconds,
                attempts=settings.triage_attempts,
            )
        case TriageProvider.HEURISTIC:
            return None


class Workflows:
    def __init__(self, settings: Settings, outgoing: Outgoing) -> None:
        self.settings = settings
        self.triager = triager_from(settings)
        self.deps = functions.Deps(
            outgoing=outgoing,
            targets=targets_from(settings),
            support_address=settings.support_addresses[0],
            triager=self.triager,
            retrain_every=retrain_every(settings),
        )
        self.functions = functions.build(self.deps)
        self.runner: LocalRunner | None = None
        self.inngest: Any = None
        self._undispatch: Callable[[], None] | None = None
        outbox_lease = timedelta(seconds=settings.outbox_lease_seconds)
        if settings.uses_inngest:
            dev = (settings.inngest_dev or "").strip()
            dev_on = dev.lower() not in _OFF
            base_url = settings.inngest_base_url or (dev if dev.startswith("http") else None)
            self.inngest = inngest_app.make_client(
                is_production=not dev_on,
                signing_key=settings.inngest_signing_key.get_secret_value() if settings.inngest_signing_key else None,
                event_key=settings.inngest_event_key.get_secret_value() if settings.inngest_event_key else None,
                base_url=base_url,
            )
            self.relay = Relay(inngest_app.InngestSender(self.inngest).send, lease=outbox_lease)
        else:
            self.runner = LocalRunner(
                self.functions,
                concurrency=settings.workflow_concurrency,
                lease=timedelta(seconds=settings.workflow_lease_seconds),
            )
            self.relay = Relay(self.runner.dispatch, lease=outbox_lease)

    @property
    def triage_source(self) -> str:
        return self.triager.source if self.triager is not None else "heuristic"

    @property
    def back_end(self) -> str:
        return "inngest" if self.inngest is not None else "local"

    def mount(self, app: FastAPI) -> None:
        """Serve the functions at /api/inngest when Inngest runs them."""
        if self.inngest is not None:
            inngest_app.serve(app, self.inngest, self.functions)

    async def start(self) -> None:
        if self.runner is not None:
            await self.runner.start()
            # Events emitted here start their runs at once; the relay delivers what was stored pending (by an
            # instance that runs no workflows, or before this version).
            self._undispatch = events.dispatch_on_emit(self._dispatch)
        await self.relay.start()
        if self.deps.retrain_every is not None:
            await learning.start_chain(now=utcnow())
        log.info(
            "workflows.started back_end=%s triage=%s functions=%d",
            self.back_end,
            self.triage_source,
            len(self.functions),
        )

    async def _dispatch(self, event_id: str, name: str, data: dict[str, Any]) -> None:
        assert self.runner is not None
        await self.runner.dispatch(Event(id=event_id, name=name, data=data))

    async def stop(self, grace: float) -> None:
        if self._undispatch is not None:
            self._undispatch()
            self._undispatch = None
        await self.relay.stop()
        if self.runner is not None:
            await self.runner.stop(grace)
        if self.triager is not None:
            await self.triager.aclose()

    async def wait_idle(self, timeout: float) -> None:
        """Until the relay and the runner have nothing due (runs emit events that start further runs)."""
        deadline = time.monotonic() + timeout
        quiet_rounds = 0
        while quiet_rounds < 2:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("workflows did not become idle")
            before = self.relay.delivered
            await self.relay.wait_idle(left)
            if self.runner is not None:
                await self.runner.wait_idle(max(0.1, deadline - time.monotonic()))
            quiet_rounds = quiet_rounds + 1 if self.relay.delivered == before else 0
            await asyncio.sleep(0)

    def health(self) -> dict[str, Any]:
        return {"back_end": self.back_end, "triage": self.triage_source, **self.relay.health()}
