"""The gateway's HTTP listening socket: connections accepted on it send small writes at once."""

from __future__ import annotations

import asyncio
import socket

from helpgate.gateway import bind_tcp


async def test_accepted_connections_have_nagle_off() -> None:
    """With Nagle's algorithm on, a response written as headers then body waits ~40 ms for the client's
    delayed ACK; asyncio turns it off only on sockets whose protocol is IPPROTO_TCP."""
    listening = bind_tcp("127.0.0.1", 0, "http")
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection: socket.socket = writer.get_extra_info("socket")
        accepted.set_result(connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(on_connect, sock=listening)
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", listening.getsockname()[1])
        assert await asyncio.wait_for(accepted, 10) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
