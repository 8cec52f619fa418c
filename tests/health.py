"""`helpgate serve` as a subprocess, shared by the multi-process tests: its environment, and waiting for its
/healthz."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx

#: Variables helpgate reads; the test run's own are dropped so each process gets exactly what a test sets.
OWN_PREFIXES = ("HELPGATE_", "SMTP_", "GEMINI_", "INNGEST_")


def serve_env(
    *, store_uri: str, database: str, data_dir: Path, http_port: int, smtp_port: int, **settings: str
) -> dict[str, str]:
    """The environment for `helpgate serve` (or another command) on `database`, listening on the two ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
    env.update(
        MONGODB_URI=store_uri,
        HELPGATE_MONGODB_DATABASE=database,
        HELPGATE_DATA_DIR=str(data_dir),
        HELPGATE_HTTP_PORT=str(http_port),
        HELPGATE_SMTP_PORT=str(smtp_port),
        **settings,
    )
    return env


def log_tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def wait_healthy(process: subprocess.Popen[bytes], http_port: int, log: Path, timeout: float = 60.0) -> None:
    """Returns once GET /healthz answers 200; raises with the end of `log` when the process exits first or
    `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"helpgate serve ({log}) exited with {process.returncode}:\n{log_tail(log)}")
        try:
            if httpx.get(f"http://127.0.0.1:{http_port}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"helpgate serve ({log}) not healthy within {timeout:g} s:\n{log_tail(log)}")
