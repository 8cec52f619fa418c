"""A scratch place for benches that start `helpgate serve` processes: a temp dir, an embedded store running in
its own process (so it outlives any instance) and a Dovecot, all removed at the end. On an error the end of
each instance's log goes to stderr."""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import start_embedded_store, stop_embedded_store
from tests.dovecot import Dovecot
from tests.failover import logs


@dataclass(frozen=True)
class Scratch:
    root: Path  # for tests/failover.py's instances and sink
    store_uri: str
    store_pid: int
    dovecot: Dovecot


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Scratch]:
    with tempfile.TemporaryDirectory(prefix=prefix) as directory:
        root = Path(directory)
        (root / "store").mkdir()
        store, uri = start_embedded_store(root / "store", synced=True)
        dovecot = Dovecot()
        dovecot.start()
        try:
            yield Scratch(root / "run", uri, store.pid, dovecot)
        except BaseException:
            print(logs(root / "run"), file=sys.stderr)
            raise
        finally:
            dovecot.close()
            stop_embedded_store(store)
