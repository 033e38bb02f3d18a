"""A TCP proxy a test can cut and restore: a database outage on demand.

``TcpProxy(host, port)`` listens on 127.0.0.1 (a free port) and pipes every connection to
``host:port``, in an asyncio loop of its own thread, so a test's event loop stalling (or the
code under test blocking it) cannot stall the proxy. ``cut()`` closes every open connection
and refuses new ones (the listening socket is closed: a connect gets ECONNREFUSED, as from a
database that went away); ``restore()`` listens on the same port again. Both return once done.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

__all__ = ["TcpProxy", "running_proxy"]


class TcpProxy:
    """See the module docstring; ``start()`` before use, ``close()`` after."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = _free_port()
        self.connections = 0
        """Connections accepted so far (a test can tell that its client reconnected)."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        self._call(self._listen())

    def cut(self) -> None:
        """Drop every connection and refuse new ones until ``restore()``."""
        self._call(self._cut())

    def restore(self) -> None:
        """Accept connections again."""
        self._call(self._listen())

    def close(self) -> None:
        self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def _call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout=10)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )

    async def _cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._pipes):
            # An abortive close (RST), as when a server or a network path dies.
            transport = writer.transport
            with contextlib.suppress(Exception):
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        self._pipes.clear()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        if self._server is None:
            # Cut while connecting upstream.
            writer.transport.abort()
            up_writer.transport.abort()
            return
        self.connections += 1
        self._pipes.update((writer, up_writer))
        await asyncio.gather(
            _pipe(reader, up_writer, self._pipes), _pipe(up_reader, writer, self._pipes)
        )


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pipes: set[asyncio.StreamWriter]
) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        pipes.discard(writer)
        writer.transport.abort()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running_proxy(target_host: str, target_port: int) -> Iterator[TcpProxy]:
    proxy = TcpProxy(target_host, target_port)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.close()
