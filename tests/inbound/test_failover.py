"""Failover: two `helpgate serve` processes on one store and one Dovecot, one killed with SIGKILL half-way.

Every mail (SMTP to both instances, and IMAP) must become exactly one ticket message, and every
acknowledgement must reach the relay exactly once. The counts are small for CI; bench/failover.py runs the
same harness (tests/failover.py) with 500 + 500.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pytest

from tests.dovecot import Dovecot
from tests.failover import Plan, logs, run

log = logging.getLogger(__name__)


@pytest.mark.slow
async def test_killing_one_instance_loses_and_repeats_nothing(store_uri: str, dovecot: Dovecot) -> None:
    with tempfile.TemporaryDirectory(prefix="helpgate-failover-") as directory:
        root = Path(directory)
        report = await run(
            Plan(smtp_mails=40, imap_mails=40, rate=4.0, settle_seconds=480.0),
            store_uri=store_uri,
            dovecot=dovecot,
            root=root,
            progress=lambda line: log.info("failover %s", line),
        )
        where = "\n".join(report.lines()) + "\n" + logs(root)

    assert report.killed.startswith("instance-"), where
    assert report.lost == [] and report.duplicated == [], where
    assert report.tickets == 80 and report.left_received == 0, where
    # One acknowledgement per ticket, each received by the relay once. Delivery is at most once: a mail cut off
    # by the kill between the mark before DATA and the relay's answer is `uncertain` and never resent.
    assert report.acknowledgements == report.acknowledged_tickets == 80, where
    assert report.sent_twice == [], where
    assert set(report.never_received) <= set(report.uncertain), where
