"""A fake Gemini API on 127.0.0.1 that plays a script of replies and records every request.

It speaks just enough HTTP/1.1 (`asyncio.start_server`, one request per connection) for the real google-genai
client to call `POST /{version}/models/{model}:generateContent` on it. Each request takes the next reply of
the script; the last reply repeats once the script runs out, so `[error(500)]` means "500 always".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

STATUS_NAMES = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                503: "UNAVAILABLE"}  # fmt: skip


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering: longer than the client's timeout makes it give up


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def answer(payload: object, *, input_tokens: int = 120, output_tokens: int = 40, delay: float = 0.0) -> Reply:
    """A 200 whose model text is `payload` (JSON-encoded unless it is already a string, so malformed text works)."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    body = {
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {
            "promptTokenCount": input_tokens,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": input_tokens + output_tokens,
        },
        "modelVersion": "fake-gemini",
    }
    return Reply(200, json.dumps(body).encode(), {"content-type": "application/json"}, delay)


def error(
    status: int, message: str = "fake failure", *, retry_after: str | None = None, retry_delay: str | None = None
) -> Reply:
    """An error in Google's JSON shape, with a Retry-After header or a google.rpc.RetryInfo delay when given."""
    detail: dict[str, Any] = {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN")}
    if retry_delay is not None:
        detail["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}]
    body = {"error": detail}
    headers = {"content-type": "application/json"}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    return Reply(status, json.dumps(body).encode(), headers)


class FakeGemini:
    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[RecordedRequest] = []
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def play(self, *replies: Reply) -> None:
        self.script = list(replies)

    def _next_reply(self) -> Reply:
        if not self.script:
            return error(500, "fake Gemini has no script")
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):  # a delayed reply nobody waits for any more
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            request = await self._read(reader)
            self.requests.append(request)
            reply = self._next_reply()
            if reply.delay:
                await asyncio.sleep(reply.delay)
            reason = HTTPStatus(reply.status).phrase
            head = [f"HTTP/1.1 {reply.status} {reason}", f"content-length: {len(reply.body)}", "connection: close"]
            head += [f"{name}: {value}" for name, value in reply.headers.items()]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + reply.body)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> RecordedRequest:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", ""):
            body = b""
            while size := int((await reader.readline()).strip(), 16):
                body += await reader.readexactly(size)
                await reader.readline()
            await reader.readline()
        else:
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        return RecordedRequest(method, target, headers, body)


@contextlib.asynccontextmanager
async def running_fake_gemini() -> AsyncIterator[FakeGemini]:
    fake = FakeGemini()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
