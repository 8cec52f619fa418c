"""The Inngest server's side, played in tests: its event API (a fake on 127.0.0.1), and the execution
requests it sends to /api/inngest (docs/inngest-protocol.md). The dev server cannot be installed here."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response
from starlette.types import ASGIApp

from helpgate.gateway import HttpServer
from helpgate.workflows.inngest_app import SERVE_PATH


@contextlib.asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """`app` on a real uvicorn at 127.0.0.1:<free port>; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = HttpServer(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped during start-up")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@dataclass
class FakeInngest:
    """The Inngest API's two doors the SDK knocks on: `POST /e/<event key>` and `POST /fn/register`."""

    base_url: str = ""
    events: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)  # (event key, body)
    registrations: list[dict[str, Any]] = field(default_factory=list)
    event_status: int = 200

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/e/{key}")
        async def receive(key: str, request: Request) -> Response:
            body = await request.json()
            self.events.append((key, body))
            if self.event_status != 200:
                answer = {"error": "refused", "status": self.event_status}
            else:
                answer = {"ids": [event["id"] for event in body], "status": 200}
            return Response(json.dumps(answer), status_code=self.event_status, media_type="application/json")

        @app.post("/fn/register")
        async def register(request: Request) -> dict[str, Any]:
            self.registrations.append(await request.json())
            return {"ok": True, "modified": True}

        return app


def request_body(event: dict[str, Any], *, run_id: str, steps: dict[str, Any] | None = None) -> bytes:
    """An execution request as the Inngest server sends it."""
    steps = steps or {}
    ctx = {"attempt": 0, "disable_immediate_execution": False, "run_id": run_id, "stack": {"stack": list(steps)}}
    return json.dumps({"ctx": ctx, "event": event, "events": [event], "steps": steps, "use_api": False}).encode()


async def execute(
    api: httpx.AsyncClient, fn_id: str, body: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await api.post(
        SERVE_PATH,
        params={"fnId": fn_id, "stepId": "step"},
        content=body,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def memoise(steps: dict[str, Any], ops: list[dict[str, Any]]) -> None:
    """What the server records from a 206: a step's result, or null for a sleep that is over."""
    for op in ops:
        steps[op["id"]] = {"data": op["data"]} if op["op"] == "StepRun" else None
