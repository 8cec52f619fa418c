"""Runs helpgate's workflows under Inngest: SDK functions, the served endpoint and the event sender.

The `Workflow` objects the local runner executes become SDK functions here (`to_inngest`), are served at
/api/inngest (`serve`) and are fed by the relay through `InngestSender`. Checked against inngest 0.5.19
(pinned): the SDK passes the step tools as `ctx.step`, names a function's failure handler
`<app_id>-<fn_id>-failure`, answers a non-retriable error with 500 and `X-Inngest-No-Retry: true`, and checks a
request's HMAC but not its age (docs/inngest-protocol.md), so `FreshSignature` refuses old signatures.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import urllib.parse
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import inngest
import inngest.fast_api
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from helpgate.core import log_context
from helpgate.core.errors import ConfigurationError, HelpgateError
from helpgate.outbox import events
from helpgate.workflows.step import Context, Event, Json, PermanentError, Workflow, ticket_of

log = logging.getLogger(__name__)

SERVE_PATH = "/api/inngest"
SIGNATURE_HEADER = b"x-inngest-signature"
SEND_TIMEOUT = 10.0  # seconds: the SDK retries a silent server for minutes
_FIELD_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")  # keeps `match` out of CEL syntax


class EventNotSent(HelpgateError):
    """Inngest did not take an event (no answer in time, refused, unreachable): the relay retries it later."""

    http_status = 503


class NonRetriable(inngest.NonRetriableError):
    """Our PermanentError as the SDK's non-retriable error, reported under the original error's name, so the
    failure handler reads the same `Name: message` text as under the local runner."""

    def __init__(self, error: PermanentError) -> None:
        super().__init__(str(error))
        self._original_name = type(error).__name__

    @property
    def name(self) -> str:
        return self._original_name


def make_client(
    *,
    app_id: str = "helpgate",
    is_production: bool,
    signing_key: str | None,
    event_key: str | None,
    base_url: str | None,
) -> inngest.Inngest:
    """An SDK client; `base_url` (a self-hosted or dev server) serves both the API and the event API.

    Production mode verifies request signatures, so it needs the signing key, and the relay needs the event key.
    """
    if is_production and not (signing_key and event_key):
        raise ConfigurationError(
            "Inngest in production mode needs INNGEST_SIGNING_KEY and INNGEST_EVENT_KEY (or set INNGEST_DEV)"
        )
    try:
        return inngest.Inngest(
            app_id=app_id,
            is_production=is_production,
            signing_key=signing_key,
            event_key=event_key,
            api_base_url=base_url,
            event_api_base_url=base_url,
            logger=logging.getLogger("helpgate.workflows.inngest"),
        )
    except Exception as error:  # the SDK raises a bare Exception for a URL it cannot use
        raise ConfigurationError(f"INNGEST_BASE_URL {base_url!r}: {error}") from error


class InngestStep:
    """The Step protocol over the SDK's `ctx.step`."""

    def __init__(self, step: inngest.Step, run_id: str) -> None:
        self._step = step
        self._run_id = run_id
        self._seen: Counter[str] = Counter()  # the SDK's own count, so a sent event's id names the same step

    def _count(self, step_id: str) -> str:
        """The step's id within the run: a repeated id gets a ':n' suffix, as the SDK hashes it."""
        self._seen[step_id] += 1
        return step_id if self._seen[step_id] == 1 else f"{step_id}:{self._seen[step_id] - 1}"

    async def run(self, step_id: str, handler: Callable[[], Awaitable[Json]], *, reads_only: bool = False) -> Json:
        self._count(step_id)

        async def body() -> Json:
            # The SDK retries any error raised inside a step; only its own non-retriable error escapes the step.
            try:
                return await handler()
            except PermanentError as error:
                raise NonRetriable(error) from error

        return await self._step.run(step_id, body)

    async def sleep(self, step_id: str, duration: timedelta) -> None:
        self._count(step_id)
        await self._step.sleep(step_id, duration)

    async def send_event(self, step_id: str, name: str, data: dict[str, Any]) -> None:
        # An id stable across retries of this step: Inngest drops a second event with the same id.
        event_id = f"{self._run_id}:{self._count(step_id)}"
        await self._step.send_event(step_id, inngest.Event(id=event_id, name=name, data=data))


def _event(raw: Mapping[str, Any]) -> Event:
    data = raw.get("data")
    return Event(id=str(raw.get("id") or ""), name=str(raw.get("name") or ""), data=dict(data or {}))


def _failed_run(ctx: inngest.Context) -> tuple[Context, str]:
    """The failed run's context (its ORIGINAL event) and `Name: message`, from an `inngest/function.failed`
    event: `data = {"error": {"name", "message", ...}, "event": <original>, "function_id", "run_id"}`."""
    data: Mapping[str, Any] = ctx.event.data
    original = data.get("event")
    error = data.get("error")
    if not isinstance(error, Mapping):
        error = {"message": str(error)}
    text = f"{error.get('name') or 'Error'}: {error.get('message') or ''}"
    run_id = str(data.get("run_id") or ctx.run_id)
    return Context(event=_event(original if isinstance(original, Mapping) else {}), run_id=run_id), text


def to_inngest(client: inngest.Inngest, workflow: Workflow) -> inngest.Function[Any]:
    """The SDK function for `workflow`: same id, trigger and policies; PermanentError fails the run at once."""

    async def handler(ctx: inngest.Context) -> Json:
        event = Event(id=ctx.event.id, name=ctx.event.name, data=dict(ctx.event.data))
        context = Context(event=event, run_id=ctx.run_id, attempt=ctx.attempt)
        try:
            with log_context.scope(ticket=ticket_of(event.data)):
                return await workflow.handler(context, InngestStep(ctx.step, ctx.run_id))
        except PermanentError as error:
            raise NonRetriable(error) from error

    on_failure = None
    if workflow.on_failure is not None:
        failure_handler = workflow.on_failure

        async def on_failure(ctx: inngest.Context) -> None:
            context, text = _failed_run(ctx)
            log.info("inngest.on_failure fn=%s run=%s event=%s", workflow.id, context.run_id, context.event.id)
            try:
                await failure_handler(context, text)
            except PermanentError as error:
                raise NonRetriable(error) from error

    cancel = []
    for rule in workflow.cancel:
        if not _FIELD_PATH.fullmatch(rule.match):
            raise ConfigurationError(f"workflow {workflow.id}: cancel match {rule.match!r} is not a field path")
        # CEL: `event` is the run's trigger, `async` the incoming event (Inngest's cancelOn `if`).
        cancel.append(inngest.Cancel(event=rule.event, if_exp=f"event.data.{rule.match} == async.data.{rule.match}"))

    return client.create_function(
        fn_id=workflow.id,
        name=workflow.title,
        trigger=inngest.TriggerEvent(event=workflow.trigger),
        retries=workflow.retries,
        cancel=cancel or None,
        concurrency=[inngest.Concurrency(limit=workflow.concurrency)] if workflow.concurrency is not None else None,
        on_failure=on_failure,
    )(handler)


class FreshSignature:
    """ASGI middleware: refuse a request to `path` whose X-Inngest-Signature timestamp `t=` is missing or further
    than `max_age` from now, so a captured signed request cannot be replayed. Other paths pass untouched, and the
    body is never read: the SDK still verifies the HMAC, and decides about unsigned requests."""

    def __init__(self, app: ASGIApp, *, path: str, max_age: timedelta, clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.path = path
        self.max_age = max_age.total_seconds()
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].removeprefix(scope.get("root_path", "")) == self.path:
            signatures = [value.decode("latin-1") for key, value in scope["headers"] if key.lower() == SIGNATURE_HEADER]
            # The SDK reads one of several headers: every one must be fresh.
            reasons = [reason for reason in map(self._refusal, signatures) if reason]
            if reasons:
                log.warning("inngest.signature_refused method=%s reason=%s", scope["method"], reasons[0])
                await JSONResponse({"detail": "stale signature"}, status_code=401)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, header: str) -> str | None:
        """Why this signature header is refused, or None; `t` is parsed the way the SDK parses it."""
        values = urllib.parse.parse_qs(header).get("t")
        try:
            timestamp = int(values[0]) if values else None
        except ValueError:
            timestamp = None
        if timestamp is None:
            return "no timestamp"
        age = self.clock() - timestamp
        if abs(age) > self.max_age:
            return f"age {age:.0f}s"
        return None


def serve(
    app: FastAPI,
    client: inngest.Inngest,
    workflows: Sequence[Workflow],
    *,
    max_signature_age: timedelta = timedelta(minutes=5),
    allow_unsigned_sync: bool = False,
) -> None:
    """Mount /api/inngest (GET introspect, PUT sync, POST execute) serving `workflows`.

    In production mode an unsigned PUT would make the SDK register the app at whatever URL the request names
    (its Host header), so sync must be signed unless `allow_unsigned_sync`; signatures older than
    `max_signature_age` are refused. Call before the app starts (it adds a middleware).
    """
    ids = Counter(workflow.id for workflow in workflows)
    if duplicates := sorted(id_ for id_, count in ids.items() if count > 1):
        raise ConfigurationError(f"workflow ids served twice: {', '.join(duplicates)}")
    functions = [to_inngest(client, workflow) for workflow in workflows]
    inngest.fast_api.serve(
        app,
        client,
        functions,
        serve_path=SERVE_PATH,
        enable_unauthed_sync=allow_unsigned_sync,  # ignored in dev mode: the dev server does not sign
    )
    for route in app.router.routes:
        if isinstance(route, APIRoute) and route.path == SERVE_PATH:
            route.include_in_schema = False  # the Inngest protocol's endpoint, not an operation of our API
    if client.is_production:
        app.add_middleware(FreshSignature, path=SERVE_PATH, max_age=max_signature_age)


class InngestSender:
    """Delivers the relay's events to Inngest. The event id is the outbox id, so Inngest drops a redelivery."""

    def __init__(self, client: inngest.Inngest, *, timeout: float = SEND_TIMEOUT) -> None:
        self._client = client
        self._timeout = timeout

    async def send(self, event: Event) -> None:
        """Send one event or raise EventNotSent; bounded by the timeout, as the SDK alone may wait for minutes."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.send(
                    inngest.Event(id=event.id, name=event.name, data=events.for_inngest(event.data))
                )
        except TimeoutError as error:
            raise EventNotSent(f"Inngest did not take event {event.id} within {self._timeout:g}s") from error
        except Exception as error:  # an edge: whatever the SDK raises, the relay keeps the event and retries
            raise EventNotSent(f"Inngest did not take event {event.id}: {type(error).__name__}: {error}") from error
