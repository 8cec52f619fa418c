"""The HTTP API (FastAPI): thin routes over core services."""
