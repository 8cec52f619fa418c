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
from datetime import timedelta
from email.utils import parseaddr
from typing import Any

import uvicorn
from pymongo import AsyncMongoClient

from helpgate import probes
from helpgate.api.app import create_app
from helpgate.api.body_limit import BodyLimits
from helpgate.api.deferred import DeferredWork
from helpgate.api.event_streams import EventStreams, StreamPolicy
from helpgate.core import db, metrics
from helpgate.core.crypto import SecretBox
from helpgate.core.errors import ConfigurationError
from helpgate.core.mail import message_ids, wiring
from helpgate.core.mail.worker import OutboundWorker
from helpgate.core.models import ALL_MODELS
from helpgate.core.security import TokenIssuer, load_jwt_secret, load_secret_key
from helpgate.core.services import retention, sessions, tickets
from helpgate.core.settings import Settings
from helpgate.inbound import guards, pipeline
from helpgate.inbound.certificates import CertificateFiles, RenewingContext
from helpgate.inbound.smtp import SmtpListener, SupportHandler
from helpgate.inbound.smtp_sessions import SessionLimits
from helpgate.inbound.supervisor import Supervisor
from helpgate.inbound.worker import InboundWorker
from helpgate.workflows.engine import Workflows

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


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: db.EmbeddedStore | None = None
        self.client: AsyncMongoClient[dict[str, Any]] | None = None
        self.worker = InboundWorker(instance_id=settings.instance_id, claim_seconds=settings.inbound_claim_seconds)
        self.smtp: SmtpListener | None = None
        self.imap: Supervisor | None = None
        self.outbound: OutboundWorker | None = None
        self.workflows: Workflows | None = None
        self.streams: EventStreams | None = None  # GET /api/events
        self.deferred = DeferredWork()  # what routes do after answering (sign-up, password reset)
        self.secret_key = ""
        self._http: HttpServer | None = None
        self._http_task: asyncio.Task[None] | None = None
        self.http_port = settings.http_port
        self._purging: asyncio.Task[None] | None = None

    @property
    def http_serving(self) -> bool:
        return self._http is not None and self._http.started and not self._http.should_exit

    @property
    def box(self) -> SecretBox:
        """Encrypts and decrypts stored secrets (IMAP passwords) with the installation's secret key."""
        return SecretBox(self.load_secret_key())

    def load_secret_key(self) -> str:
        """HELPGATE_SECRET_KEY, or the one generated into the data dir: encrypts secrets, signs Message-IDs."""
        if not self.secret_key:
            self.secret_key = load_secret_key(self.settings.secret_key, self.settings.data_dir)
        return self.secret_key

    def _wake_outbound(self) -> None:
        if self.outbound is not None:
            self.outbound.wake()

    def inbound_policy(self) -> pipeline.Policy:
        """What the inbound pipeline must know of this installation: its addresses, keys and rules."""
        settings = self.settings
        secret = self.load_secret_key()
        sender = settings.mail_from or settings.support_addresses[0]
        loop_tag = parseaddr(sender)[1].lower() or settings.support_addresses[0]
        me = guards.Self(
            addresses=frozenset({*settings.support_addresses, loop_tag}),
            loop_tag=loop_tag,
            is_own_message_id=lambda message_id: message_ids.is_signed(message_id, secret=secret),
        )
        return pipeline.Policy(
            secret=secret,
            me=me,
            trusted_authserv_ids=frozenset(settings.trusted_authserv_ids),
            quarantine_dmarc_fail=settings.quarantine_dmarc_fail,
            max_attachments=settings.max_attachments,
        )

    async def connect_store(self) -> None:
        uri = self.settings.mongodb_uri
        if not uri:
            self.store = db.EmbeddedStore(self.settings.data_dir)
            uri = await self.store.start()
        self.client = db.make_client(uri)
        await db.init_models(self.client, self.settings.mongodb_database, ALL_MODELS)

    async def start(self) -> None:
        """Bind both ports first (a clear error before anything starts), then bring the parts up."""
        settings = self.settings
        tls = smtp_tls(settings)
        http_socket = bind_tcp(settings.http_host, settings.http_port, "http")
        try:
            secret = load_jwt_secret(settings.jwt_secret, settings.data_dir)
            await self.connect_store()
            await tickets.ensure_counters()
            await self.worker.start(policy=self.inbound_policy())
            outgoing = wiring.make_outgoing(settings, secret=self.load_secret_key(), wake=self._wake_outbound)
            self.outbound = wiring.make_worker(
                settings, wiring.make_transport(settings), loop_marker=outgoing.loop_marker
            )
            await self.outbound.start()
            if settings.run_workflows:
                self.workflows = Workflows(settings, outgoing)
                await self.workflows.start()
            self.imap = Supervisor(
                box=self.box,
                on_stored=self.worker.submit,
                instance_id=settings.instance_id,
                lease_seconds=settings.mailbox_lease_seconds,
            )
            await self.imap.start()
            keep = retention.Retention(
                settings.raw_mail_retention_days, settings.attachment_retention_days, settings.workflow_history_days
            )
            if keep.enabled:
                self._purging = asyncio.create_task(retention.keep_purging(keep), name="retention")
            handler = SupportHandler(
                support_addresses=settings.support_addresses,
                on_stored=self.worker.submit,
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
            app.state.box = self.box
            app.state.mailboxes_changed = self.imap.wake
            app.state.readiness = lambda: probes.readiness(self)
            app.state.metrics = metrics.Exporter(lambda: probes.queues(self))
            app.state.metrics_token = settings.metrics_token
            self.streams = app.state.event_streams = EventStreams(StreamPolicy.from_settings(settings))
            if self.workflows is not None:
                self.workflows.mount(app)
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

    async def stop(self) -> None:
        """Stop accepting, finish what is in flight, close the store."""
        grace = self.settings.shutdown_grace_seconds
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
        if self.workflows is not None:
            await self.workflows.stop(grace)
            self.workflows = None
        if self.outbound is not None:
            await self.outbound.stop(grace)
            self.outbound = None
        await self.worker.stop(grace)
        if self.client is not None:
            await self.client.close()
            self.client = None
        if self.store is not None:
            await self.store.stop()
            self.store = None
        log.info("gateway.stopped")
