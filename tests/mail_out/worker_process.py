"""An outbound worker alone in a process, for tests that kill it (SIGKILL) in the middle of a batch.

    python -m tests.mail_out.worker_process STORE_URI DATABASE SINK_PORT SINK_CA_FILE

Prints READY once the worker runs, then sends until it is killed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from helpgate.core import db
from helpgate.mail_out.transport import SmtpConfig, SmtpTransport
from helpgate.mail_out.worker import OutboundWorker
from helpgate.models import ALL_MODELS
from tests.mail_capture import PASSWORD, USERNAME

CONNECTIONS = 2
LEASE_SECONDS = 1.0
BATCH = 10


async def run(uri: str, database: str, port: int, ca_file: Path) -> None:
    await db.init_models(db.make_client(uri), database, ALL_MODELS)
    transport = SmtpTransport(
        SmtpConfig(host="127.0.0.1", port=port, username=USERNAME, password=PASSWORD, ca_file=ca_file)
    )
    worker = OutboundWorker(
        transport=transport,
        loop_marker="help@acme.test",
        connections=CONNECTIONS,
        lease_seconds=LEASE_SECONDS,
        batch=BATCH,
    )
    await worker.start()
    print("READY", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])))
