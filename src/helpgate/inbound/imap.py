"""IMAP pollers (aioimaplib): one long-lived task per mailbox whose lease this instance holds (see supervisor.py).

Each poller keeps a cursor (UIDVALIDITY, last UID) in the store, fetches new mail with BODY.PEEK[],
stores the raw bytes, and only then marks the message \\Seen or moves it. New mail arrives by IDLE when
the server offers it, else by polling. Errors reconnect with exponential backoff and jitter; one broken
mailbox never stalls another, nor the SMTP listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable
from datetime import datetime

from aioimaplib import aioimaplib

from helpgate.core import metrics
from helpgate.core.clock import utcnow
from helpgate.core.crypto import SecretBox
from helpgate.core.loops import Backoff, Clock, SystemClock
from helpgate.inbound import imap_xoauth2, raw_messages
from helpgate.inbound.imap_names import mailbox_argument
from helpgate.inbound.mime import message_ids
from helpgate.mailboxes import mailboxes
from helpgate.mailboxes.oauth import Tokens
from helpgate.models import ImapSecurity, Mailbox, MailboxAuth, RawMessage
from helpgate.tickets import tickets

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0  # connection and greeting; a server that accepts but never greets is retried
UIDVALIDITY_RE = re.compile(rb"\[UIDVALIDITY (\d+)\]")
UIDNEXT_RE = re.compile(rb"\[UIDNEXT (\d+)\]")
FETCH_UID_RE = re.compile(rb"UID (\d+)")
HEADER_FETCH_RE = re.compile(rb"^\d+ FETCH \(.*UID (\d+)")


class ImapError(Exception):
    """The server refused something or the connection failed; the poller reconnects."""


class OffDuty(Exception):
    """This instance may no longer poll the mailbox (its lease could lapse): the poller ends."""


def _ok(response: aioimaplib.Response, what: str) -> aioimaplib.Response:
    if response.result != "OK":
        detail = b" ".join(bytes(line) for line in response.lines).decode(errors="replace")
        raise ImapError(f"{what} refused: {response.result} {detail}".strip())
    return response


def _search_uids(response: aioimaplib.Response) -> list[int]:
    uids: list[int] = []
    for line in response.lines:
        text = bytes(line)
        if text.startswith(b"SEARCH"):
            text = text.removeprefix(b"SEARCH")
        if text and all(part.isdigit() for part in text.split()):
            uids.extend(int(part) for part in text.split())
    return sorted(set(uids))


class Poller:
    """Imports one mailbox until stopped."""

    def __init__(
        self,
        mailbox: Mailbox,
        *,
        box: SecretBox,
        on_stored: Callable[[RawMessage], None],
        tokens: Tokens | None = None,
        on_duty: Callable[[], bool] = lambda: True,
        command_timeout: float = 30.0,
        idle_renew_seconds: float = 25 * 60,
        max_backoff: float = 300.0,
        clock: Clock | None = None,
    ) -> None:
        self.mailbox = mailbox
        self._box = box
        self._tokens = tokens
        self._on_stored = on_stored
        self._on_duty = on_duty
        self._timeout = command_timeout
        self._idle_renew = idle_renew_seconds
        self._reconnect = Backoff(base=1.0, cap=max_backoff, jitter=(0.0, 1.0))  # full jitter: up to 1, 2, 4 ... s
        self._clock = clock or SystemClock()
        self._lost = asyncio.Event()
        self.uses_idle = False

    @property
    def name(self) -> str:
        return self.mailbox.address

    async def run(self) -> None:
        attempt = 0
        while True:
            started = utcnow()
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except OffDuty:
                log.warning("imap.off_duty mailbox=%s: the lease is not confirmed, polling stops", self.name)
                return
            except Exception as error:
                reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
                attempt = 1 if _ran_long(started) else attempt + 1
                delay = self._reconnect.delay(attempt)
                log.warning("imap.error mailbox=%s attempt=%d retry=%.1fs reason=%s", self.name, attempt, delay, reason)
                metrics.IMAP_POLL_ERRORS.labels(mailbox=self.name).inc()
                try:
                    await mailboxes.record_state(
                        self.mailbox, connected=False, last_error=reason, last_error_at=utcnow()
                    )
                except Exception as store_error:  # the store may be what failed; keep retrying anyway
                    log.warning("imap.state_not_saved mailbox=%s reason=%s", self.name, store_error)
                await self._clock.sleep(delay)

    async def _connect(self) -> aioimaplib.IMAP4:
        mailbox = self.mailbox
        token = await self._token()
        context: ssl.SSLContext | None = None
        if mailbox.imap_security is ImapSecurity.TLS:
            context = ssl.create_default_context()
            if not mailbox.imap_verify_tls:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        self._lost.clear()
        client = aioimaplib.IMAP4(
            host=mailbox.imap_host,
            port=mailbox.imap_port,
            timeout=self._timeout,
            conn_lost_cb=lambda _exc: self._lost.set(),
            ssl_context=context,
        )
        try:
            await self._do(client.wait_hello_from_server(), "greeting", CONNECT_TIMEOUT)
            await self._log_in(client, token)
            # Servers announce more (or fewer) capabilities once logged in; IDLE and MOVE are read from these.
            await self._do(client.protocol.capability(), "CAPABILITY")
        except BaseException:
            if client.protocol.transport is not None:
                client.protocol.transport.close()
            raise
        return client

    async def _token(self, refused: str | None = None) -> str | None:
        """The OAuth2 access token to log in with (None: the mailbox logs in with a password), asked for before the
        connection is opened, so a mailbox that needs consent costs its server nothing."""
        if self.mailbox.auth is not MailboxAuth.OAUTH2:
            return None
        if self._tokens is None:
            raise ImapError("OAuth2 mailbox without a token source")
        return await self._tokens.access_token(self.mailbox, refused=refused)

    async def _log_in(self, client: aioimaplib.IMAP4, token: str | None) -> None:
        mailbox = self.mailbox
        if token is None:
            password = self._box.decrypt(mailbox.password_encrypted)
            await self._command(client.login(mailbox.username, password), "LOGIN")
            return
        response, challenge = await self._do(imap_xoauth2.login(client, mailbox.username, token), "XOAUTH2")
        if response.result == "OK":
            return
        # Refused before we thought it expired (revoked, the server's clock): replaced once, unless already replaced.
        log.info("imap.xoauth2_refused mailbox=%s challenge=%s", self.name, challenge)
        token = await self._token(refused=token)
        assert token is not None
        response, challenge = await self._do(imap_xoauth2.login(client, mailbox.username, token), "XOAUTH2")
        if response.result == "OK":
            return
        detail = b" ".join(bytes(line) for line in response.lines[-1:]).decode(errors="replace")
        raise ImapError(f"AUTHENTICATE XOAUTH2 refused: {response.result} {detail} ({challenge})".strip())

    async def _session(self) -> None:
        client = await self._connect()
        try:
            uidvalidity, uidnext = await self._select(client)
            await mailboxes.record_state(self.mailbox, connected=True, last_error=None)
            log.info("imap.connected mailbox=%s folder=%s idle=%s", self.name, self.mailbox.folder, self.uses_idle)
            await self._sync(client, uidvalidity, uidnext)
            while True:
                if self.uses_idle:
                    await self._idle(client)
                else:
                    await self._sleep_or_lost(self.mailbox.poll_interval_seconds)
                    await self._command(client.noop(), "NOOP")
                await self._sync(client, uidvalidity, None)
        finally:
            await self._logout(client)

    async def _select(self, client: aioimaplib.IMAP4) -> tuple[int, int | None]:
        folder = mailbox_argument(self.mailbox.folder)
        response = await self._command(client.select(folder), f"SELECT {folder}")
        text = b"\n".join(bytes(line) for line in response.lines)
        match = UIDVALIDITY_RE.search(text)
        if match is None:
            raise ImapError("server sent no UIDVALIDITY")
        uidnext = UIDNEXT_RE.search(text)
        self.uses_idle = client.has_capability("IDLE")
        return int(match.group(1)), int(uidnext.group(1)) if uidnext else None

    async def _sync(self, client: aioimaplib.IMAP4, uidvalidity: int, uidnext: int | None) -> None:
        state = self.mailbox.state
        if state.uidvalidity is None:
            criteria = "ALL" if self.mailbox.import_history else "UNSEEN"
            uids = _search_uids(await self._command(client.uid_search(criteria, charset=None), "UID SEARCH"))
            await self._import(client, uids)
            floor = max(state.last_uid, (uidnext or 1) - 1)
            await mailboxes.record_state(self.mailbox, uidvalidity=uidvalidity, last_uid=floor)
        elif state.uidvalidity != uidvalidity:
            log.warning(
                "imap.uidvalidity_changed mailbox=%s old=%s new=%s: rescanning by Message-ID",
                self.name,
                state.uidvalidity,
                uidvalidity,
            )
            uids = await self._not_yet_imported(client)
            await mailboxes.record_state(self.mailbox, uidvalidity=uidvalidity, last_uid=0)
            await self._import(client, uids)
        else:
            search = client.uid_search(f"UID {state.last_uid + 1}:*", charset=None)
            response = await self._command(search, "UID SEARCH")
            # "n:*" always matches the highest UID, even when it is below n.
            await self._import(client, [uid for uid in _search_uids(response) if uid > state.last_uid])
        await mailboxes.record_state(self.mailbox, last_poll_at=utcnow())

    async def _not_yet_imported(self, client: aioimaplib.IMAP4) -> list[int]:
        """After a UIDVALIDITY change: every UID whose Message-ID this mailbox has not delivered yet (a mail reusing
        a Message-ID this mailbox delivered is taken for that mail: telling them apart would mean fetching all)."""
        fetch = client.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        response = await self._command(fetch, "UID FETCH headers")
        pending: list[int] = []
        current_uid: int | None = None
        for line in response.lines:
            data = bytes(line)
            match = HEADER_FETCH_RE.match(data)
            if match:
                current_uid = int(match.group(1))
                continue
            if current_uid is None or not isinstance(line, bytearray):
                continue
            ids = message_ids(data.decode(errors="replace"))
            if not ids or not await tickets.delivered(message_id=ids[0], address=self.name):
                pending.append(current_uid)
            current_uid = None
        return sorted(pending)

    async def _import(self, client: aioimaplib.IMAP4, uids: list[int]) -> None:
        if uids:
            log.info("imap.importing mailbox=%s count=%d", self.name, len(uids))
        for uid in uids:
            self._check_connection()
            data = await self._fetch(client, uid)
            if data is None:
                continue  # expunged meanwhile
            self._check_duty()
            raw = await raw_messages.store(data=data, source=f"imap:{self.name}", mailbox=self.name)
            await self._after_import(client, uid)
            await mailboxes.count_imported(self.mailbox, uid=uid)
            self._on_stored(raw)

    async def _fetch(self, client: aioimaplib.IMAP4, uid: int) -> bytes | None:
        response = await self._command(client.uid("FETCH", str(uid), "(UID FLAGS BODY.PEEK[])"), f"UID FETCH {uid}")
        for line in response.lines:
            if isinstance(line, bytearray):
                return bytes(line)
        return None

    async def _after_import(self, client: aioimaplib.IMAP4, uid: int) -> None:
        """Mark \\Seen or move, only once the raw bytes are stored."""
        target = mailbox_argument(self.mailbox.move_to) if self.mailbox.move_to is not None else None
        if target is None:
            await self._command(client.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Seen)"), f"UID STORE {uid}")
        elif client.has_capability("MOVE"):
            await self._command(client.uid("MOVE", str(uid), target), f"UID MOVE {uid}")
        else:
            await self._command(client.uid("COPY", str(uid), target), f"UID COPY {uid}")
            await self._command(client.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)"), f"UID STORE {uid}")
            await self._command(client.expunge(), "EXPUNGE")

    async def _do[T](self, pending: Awaitable[T], what: str, timeout: float | None = None) -> T:
        """Await an aioimaplib call, but give up when the connection drops or the server stalls.

        aioimaplib leaves a pending command waiting forever when its connection is lost, so every call
        races the connection-lost event and a timeout.
        """
        task = asyncio.ensure_future(pending)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait({task, lost}, timeout=timeout or self._timeout, return_when=FIRST_COMPLETED)
        finally:
            lost.cancel()
        if task in done:
            return task.result()
        task.cancel()
        raise ImapError(f"connection lost during {what}" if lost in done else f"{what} timed out")

    async def _command(self, pending: Awaitable[aioimaplib.Response], what: str) -> aioimaplib.Response:
        return _ok(await self._do(pending, what), what)

    async def _idle(self, client: aioimaplib.IMAP4) -> None:
        idle = await self._do(client.idle_start(timeout=self._idle_renew), "IDLE")
        # No news within the renewal period: end IDLE and start a new one, as RFC 2177 asks.
        with contextlib.suppress(TimeoutError):
            await self._do(client.wait_server_push(timeout=self._idle_renew), "IDLE wait", self._idle_renew + 5)
        self._check_connection()
        client.idle_done()
        await self._command(idle, "IDLE end")

    async def _sleep_or_lost(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._lost.wait(), seconds)
        except TimeoutError:
            return
        self._check_connection()

    def _check_duty(self) -> None:
        """Checked before each message is stored: the supervisor cancels a poller whose lease is in doubt,
        but a stalled event loop could wake the poller before the supervisor."""
        if not self._on_duty():
            raise OffDuty(self.name)

    def _check_connection(self) -> None:
        if self._lost.is_set():
            raise ImapError("connection lost")

    async def _logout(self, client: aioimaplib.IMAP4, *, record: bool = True) -> None:
        if not self._lost.is_set():
            try:
                if client.has_pending_idle():  # stopped while idling: LOGOUT would wait for the IDLE to end
                    client.idle_done()
                await asyncio.wait_for(client.logout(), 5)
            except Exception as error:
                log.debug("imap.logout_failed mailbox=%s reason=%s", self.name, error)
        if record:
            try:  # bounded: a poller being stopped because the store is away must still end
                await asyncio.wait_for(mailboxes.record_state(self.mailbox, connected=False), 5)
            except Exception as error:
                log.debug("imap.state_not_saved mailbox=%s reason=%s", self.name, error)


async def probe(mailbox: Mailbox, *, box: SecretBox, tokens: Tokens | None = None) -> str:
    """Connect, log in and open the folder once: "ok ..." or the server's error in plain words."""
    poller = Poller(mailbox, box=box, tokens=tokens, on_stored=lambda _raw: None, command_timeout=15.0)
    try:
        client = await poller._connect()
    except Exception as error:
        return f"failed: {type(error).__name__}: {error}"
    try:
        uidvalidity, uidnext = await poller._select(client)
    except Exception as error:
        return f"failed: {type(error).__name__}: {error}"
    finally:
        await poller._logout(client, record=False)
    return f"ok: logged in, folder {mailbox.folder} has UIDVALIDITY {uidvalidity}, next UID {uidnext}, " + (
        "IDLE supported" if poller.uses_idle else "no IDLE (polling)"
    )


def _ran_long(started: datetime) -> bool:
    """A session that ran a while before failing starts the backoff afresh."""
    return (utcnow() - started).total_seconds() > 60
