"""One installation of helpgate as every process of it sees it: the settings, the store, the keys.

`helpgate serve` (the Gateway) and each store command of the CLI start from here. Nothing here imports the HTTP
API or the workflows, so a command that only works on the store starts quickly.
"""

from __future__ import annotations

import logging
from email.utils import parseaddr
from typing import Any

from pymongo import AsyncMongoClient

from helpgate.core import db
from helpgate.core.crypto import SecretBox
from helpgate.core.security import load_secret_key
from helpgate.core.settings import Settings
from helpgate.inbound import guards, pipeline
from helpgate.mail_out import message_ids
from helpgate.models import ALL_MODELS
from helpgate.tickets import counters

log = logging.getLogger(__name__)


class Installation:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: db.EmbeddedStore | None = None
        self.client: AsyncMongoClient[dict[str, Any]] | None = None
        self.secret_key = ""

    @property
    def box(self) -> SecretBox:
        """Encrypts and decrypts stored secrets (IMAP passwords) with the installation's secret key."""
        return SecretBox(self.load_secret_key())

    def load_secret_key(self) -> str:
        """HELPGATE_SECRET_KEY, or the one generated into the data dir: encrypts secrets, signs Message-IDs."""
        if not self.secret_key:
            self.secret_key = load_secret_key(self.settings.secret_key, self.settings.data_dir)
        return self.secret_key

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
        """MONGODB_URI, or the embedded store in the data dir (started, or joined when `serve` runs it), with its
        indexes and the shape of data this version reads."""
        uri = self.settings.mongodb_uri
        if not uri:
            self.store = db.EmbeddedStore(self.settings.data_dir)
            uri = await self.store.start()
        self.client = db.make_client(uri)
        await db.init_models(self.client, self.settings.mongodb_database, ALL_MODELS)
        await counters.fold_old_documents()  # a store the previous version wrote: before any counter is used

    async def close_store(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None
        if self.store is not None:
            await self.store.stop()
            self.store = None
