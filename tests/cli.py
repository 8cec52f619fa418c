"""`helpgate` commands run as a user runs them: a subprocess on the test's store and data directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpgate.core.settings import Settings


def run_cli(*args: str, settings: Settings, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HELPGATE_")}
    environment.update(
        MONGODB_URI=settings.mongodb_uri or "",
        HELPGATE_MONGODB_DATABASE=settings.mongodb_database,
        HELPGATE_DATA_DIR=str(settings.data_dir),
        **env,
    )
    command = [sys.executable, "-m", "helpgate", *args]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120, cwd=Path.cwd())
