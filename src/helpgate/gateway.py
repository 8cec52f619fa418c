"""One running helpgate: the store, the inbound worker, the SMTP listener and the HTTP API on one loop.

`helpgate serve` and the tests both run a Gateway; they differ only in the Settings they pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import uvicorn

from helpgate import probes
from helpgate.accounts import sessions
from helpgate.api.app import create_app
from helpgate.api.body_limit import BodyLimits
from helpgate.api.deferred import DeferredWork
from helpgate.api.event_streams import EventStreams, StreamPolicy
from helpgate.audit import audit
from helpgate.console import app as console
from helpgate.core import metrics
from helpgate.core.clock import utcnow
from helpgate.core.errors import ConfigurationError
from helpgate.core.loops import PollingLoop
from helpgate.core.security import TokenIssuer, load_jwt_secret
from helpgate.core.settings import Settings
from helpgate.inbound.certificates import CertificateFiles, RenewingContext
from helpgate.inbound.smtp import SmtpListener, SupportHandler
from helpgate.inbound.smtp_sessions import SessionLimits
from helpgate.inbound.supervisor import Supervisor
from helpgate.inbound.worker import InboundWorker
from helpgate.installation import Installation
from helpgate.mail_out import wiring
from helpgate.mail_out.outgoing import Outgoing
from helpgate.mail_out.worker import OutboundWorker
from helpgate.mailboxes import alerts, mailboxes
from helpgate.mailboxes.oauth import Tokens
from helpgate.mailboxes.senders import Senders
from helpgate.maintenance import retention
from helpgate.models import Mailbox
from helpgate.tickets import categories, tickets, unfinished
from helpgate.workflows.ai.provider import Provider
from helpgate.workflows.engine import Workflows, triager_from

log = logging.getLogger(__name__)


class HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling: the gateway decides when to stop, in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def cannot_listen(what: str, host: str, port: int, error: OSError) -> ConfigurationError:
    """One clear line naming the address and the settings to change."""
    reason = "address already in use" if error.errno == errno.EADDRINUSE else error.strerror
    return ConfigurationError(
        f"cannot listen for {what} on {host}:{port} ({reason}); "
        f"set HELPGATE_{what.upper()}_HOST/HELPGATE_{what.upper()}_PORT"
    )


def bind_tcp(host: str, port: int, what: str) -> socket.socket:
    """A listening socket, or a ConfigurationError that names the setting to change."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on connections whose
    # socket says so, and with it on, a response written as headers then body waited ~40 ms for the client's
    # delayed ACK (bench/api.py).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise cannot_listen(what, host, port, error) from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def smtp_tls(settings: Settings) -> RenewingContext | None:
    """The listener's certificate, loaded, when both files are set (Settings refuses one without the other);
    a ConfigurationError when they do not load."""
    if settings.smtp_tls_cert is None or settings.smtp_tls_key is None:
        return None
    tls = RenewingContext(CertificateFiles(cert=settings.smtp_tls_cert, key=settings.smtp_tls_key))
    tls.load()
    return tls


class Gateway(Installation):
    """`helpgate serve`: the installation with its listeners, workers and HTTP API running."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.worker = InboundWorker(instance_id=settings.instance_id, claim_seconds=settings.inbound_claim_seconds)
        self.smtp: SmtpListener | None = None
        self.imap: Supervisor | None = None
        self.outbound: OutboundWorker | None = None
        self.workflows: Workflows | None = None
        self.streams: EventStreams | None = None  # GET /api/events
        self.deferred = DeferredWork()  # what routes do after answering (sign-up, password reset)
        self._http: HttpServer | None = None
        self._http_task: asyncio.Task[None] | None = None
        self.http_port = settings.http_port
        self._purging: asyncio.Task[None] | None = None
        self._changes: PollingLoop | None = None
        self.drafter: Provider | None = None
        self.tokens: Tokens | None = None  # OAuth2 mailboxes' access tokens
        self.senders: Senders | None = None  # mailboxes that send their own mail
        self._outgoing: Outgoing | None = None

    @property
    def http_serving(self) -> bool:
        return self._http is not None and self._http.started and not self._http.should_exit

    def _mailboxes_changed(self) -> None:
        """An admin changed mailboxes through this process: the pollers and the sending routes follow now."""
        if self.imap is not None:
            self.imap.wake()
        if self.senders is not None:
            self.senders.forget()

    async def _needs_consent(self, mailbox: Mailbox, reason: str) -> None:
        """A mailbox's grant was refused: it sends nothing more (the routes read it again), and the admins hear."""
        if self.senders is not None:
            self.senders.forget()
        if self._outgoing is not None:
            await alerts.needs_consent(mailbox, reason, outgoing=self._outgoing)

    def _wake_outbound(self) -> None:
        if self.outbound is not None:
            self.outbound.wake()

    async def start(self) -> None:
        """Bind both ports first (a clear error before anything starts), then bring the parts up."""
        settings = self.settings
        tls = smtp_tls(settings)
        http_socket = bind_tcp(settings.http_host, settings.http_port, "http")
        try:
            secret = load_jwt_secret(settings.jwt_secret, settings.data_dir)
            await self.connect_store()
            await tickets.ensure_counters()
            await categories.ensure_defaults()
            await self.worker.start(policy=self.inbound_policy())
            self.tokens = Tokens(
                box=self.box,
                instance_id=settings.instance_id,
                on_needs_consent=self._needs_consent,
            )
            self.senders = Senders(box=self.box, tokens=self.tokens, relay=bool(settings.outbound_smtp_host))
            outgoing = self._outgoing = wiring.make_outgoing(
                settings,
                secret=self.load_secret_key(),
                wake=self._wake_outbound,
                handover=lambda: self.outbound,
                route=self.senders.route,
            )
            self.outbound = wiring.make_worker(
                settings,
                wiring.make_transport(settings),
                loop_marker=outgoing.loop_marker,
                routes=self.senders.transport,
            )
            await self.outbound.start()
            if settings.run_workflows:
                self.workflows = Workflows(settings, outgoing)
                await self.workflows.start()
            self.imap = Supervisor(
                box=self.box,
                on_stored=self.worker.take,
                instance_id=settings.instance_id,
                tokens=self.tokens,
                lease_seconds=settings.mailbox_lease_seconds,
            )
            await self.imap.start()
            self._changes = PollingLoop("unfinished-changes", self.finish_changes, interval=unfinished.INTERVAL)
            self._changes.start()
            keep = retention.Retention(
                settings.raw_mail_retention_days, settings.attachment_retention_days, settings.workflow_history_days
            )
            if keep.enabled:
                self._purging = asyncio.create_task(retention.keep_purging(keep), name="retention")
            handler = SupportHandler(
                support_addresses=settings.support_addresses,
                on_stored=self.worker.take,
                claim=self.worker.claim_new,
                max_recipients=settings.smtp_max_recipients,
            )
            self.smtp = SmtpListener(
                handler,
                host=settings.smtp_host,
                port=settings.smtp_port,
                max_message_bytes=settings.max_message_bytes,
                hostname=settings.smtp_hostname,
                tls=tls,
                limits=SessionLimits(
                    sessions=settings.smtp_max_sessions,
                    sessions_per_client=settings.smtp_max_sessions_per_client,
                    idle_seconds=settings.smtp_idle_timeout_seconds,
                    data_seconds=settings.smtp_data_timeout_seconds,
                ),
            )
            try:
                await self.smtp.start()
            except OSError as error:
                raise cannot_listen("smtp", settings.smtp_host, settings.smtp_port, error) from None
            issuer = TokenIssuer(
                secret=secret,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                access_ttl=timedelta(minutes=settings.access_token_minutes),
            )
            app = create_app(
                issuer=issuer,
                refresh_ttl=timedelta(days=settings.refresh_token_days),
                health_probe=self.health,
                outgoing=outgoing,
                body_limits=BodyLimits.for_attachments(
                    request_bytes=settings.max_request_bytes, attachment_bytes=settings.max_reply_attachment_bytes
                ),
                deferred=self.deferred,
            )
            app.state.auth_policy = sessions.AuthPolicy.from_settings(settings)
            app.state.drafter = self.drafter = triager_from(settings)  # reply drafts (POST .../draft)
            app.state.box = self.box
            app.state.oauth_tokens = self.tokens
            app.state.mailboxes_changed = self._mailboxes_changed
            app.state.readiness = lambda: probes.readiness(self)
            app.state.metrics = metrics.Exporter(lambda: probes.queues(self))
            app.state.metrics_token = settings.metrics_token
            self.streams = app.state.event_streams = EventStreams(StreamPolicy.from_settings(settings))
            if self.workflows is not None:
                self.workflows.mount(app)
            console.mount(app)
            # A request still running after the grace period is cancelled rather than holding the stop.
            config = uvicorn.Config(
                app,
                log_config=None,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_seconds),
                proxy_headers=bool(settings.trusted_proxies),
                forwarded_allow_ips=settings.trusted_proxies or None,
            )
            self._http = HttpServer(config)
            self.http_port = int(http_socket.getsockname()[1])
            self._http_task = asyncio.create_task(self._http.serve(sockets=[http_socket]), name="http")
            while not self._http.started:
                if self._http_task.done():
                    self._http_task.result()
                    raise ConfigurationError("the HTTP server stopped during start-up")
                await asyncio.sleep(0.01)
        except BaseException:
            http_socket.close()
            await self.stop()
            raise
        log.info(
            "gateway.started http=%s:%d smtp=%s:%d store=%s",
            settings.http_host,
            self.http_port,
            settings.smtp_host,
            self.smtp.port,
            "embedded" if self.store else "mongodb",
        )

    async def health(self) -> dict[str, Any]:
        store: dict[str, Any] = {
            "ok": False,
            "kind": "embedded" if self.settings.embedded_store else "mongodb",
        }
        if self.client is not None:
            try:
                await asyncio.wait_for(self.client.admin.command("ping"), 2.0)
                store["ok"] = True
            except Exception as error:
                store["error"] = f"{type(error).__name__}: {error}"
        smtp_ok = self.smtp is not None and self.smtp.listening
        return {
            "store": store,
            "smtp": {
                "ok": smtp_ok,
                "address": f"{self.settings.smtp_host}:{self.smtp.port if self.smtp else self.settings.smtp_port}",
            },
            "http": {"ok": True, "address": f"{self.settings.http_host}:{self.http_port}"},
            "inbound": {"ok": True, "backlog": self.worker.backlog, "processed": self.worker.processed},
            "outbound": self.outbound.health() if self.outbound is not None else {"ok": False},
            "workflows": self.workflows.health() if self.workflows is not None else {"ok": True, "running": False},
            # A broken mailbox is reported, but does not make the gateway unhealthy: the rest keeps working.
            # Each mailbox is polled by one instance (its lease's owner); this instance is `instance`.
            "imap": {
                "ok": True,
                "instance": self.settings.instance_id,
                "mailboxes": self.imap.status() if self.imap else [],
            },
        }

    async def finish_changes(self, *, now: datetime | None = None) -> bool:
        """Changes cut off between their write and their audit entry and announcements (an instance killed):
        ticket changes (tickets/unfinished.py), account and mailbox changes (audit.finish_pending, then what a
        mailbox change owes after its write)."""
        now = now or utcnow()
        await unfinished.finish(now=now)
        await mailboxes.finish_cut_off(await audit.finish_pending(now=now))
        return False

    async def stop(self) -> None:
        """Stop accepting, finish what is in flight, close the store."""
        grace = self.settings.shutdown_grace_seconds
        if self._changes is not None:
            await self._changes.stop()
            self._changes = None
        if self._purging is not None:
            self._purging.cancel()
            await asyncio.gather(self._purging, return_exceptions=True)
            self._purging = None
        if self.smtp is not None:
            await self.smtp.stop(grace)
        if self.imap is not None:
            await self.imap.stop()
            self.imap = None
        if self.streams is not None:  # event streams never finish by themselves: end them first
            await self.streams.close()
            self.streams = None
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            await asyncio.gather(self._http_task, return_exceptions=True)
            self._http = self._http_task = None
        await self.deferred.stop(grace)  # it queues mail: before the outbound worker stops
        if self.drafter is not None:
            await self.drafter.aclose()
            self.drafter = None
        if self.workflows is not None:
            await self.workflows.stop(grace)
            self.workflows = None
        if self.outbound is not None:
            await self.outbound.stop(grace)
            self.outbound = None
        if self.tokens is not None:
            await self.tokens.aclose()
            self.tokens = None
        await self.worker.stop(grace)
        await self.close_store()
        log.info("gateway.stopped")
