"""A small userspace TCP proxy that can cut or stall a link: the partition and the database
outage of the fault matrix (this machine has no ``tc netem``).

It runs its own asyncio loop in a thread, so the harness can cut a link from any thread.
``cut()``: every connection is reset and new ones are refused (a server that went away).
``stall()``: bytes stop flowing both ways but the sockets stay open (a partition: nobody
gets a FIN or RST; each side finds out by its own keep-alive). ``heal()`` ends either.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field

from firmware_sim.broker import free_port

CHUNK = 65536


@dataclass
class TcpProxy:
    target_host: str
    target_port: int
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _flowing: asyncio.Event | None = None
    _refusing: bool = False

    def start(self) -> TcpProxy:
        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._flowing = asyncio.Event()
            self._flowing.set()
            self._server = loop.run_until_complete(asyncio.start_server(self._accept, self.host, self.port))
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._end_pipes())
            loop.close()

        self._thread = threading.Thread(target=main, name=f"proxy:{self.port}", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        self._call(self._close_all)
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    @staticmethod
    async def _end_pipes() -> None:
        """Pipes of a stalled link still wait for it to flow: end them before the loop."""
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in left:
            t.cancel()
        await asyncio.gather(*left, return_exceptions=True)

    def cut(self) -> None:
        """Reset every connection and refuse new ones until :meth:`heal`."""
        self._refusing = True
        self._call(self._close_all)

    def stall(self) -> None:
        """Stop forwarding in both directions; the connections stay open."""
        assert self._flowing is not None
        self._call(self._flowing.clear)

    def heal(self) -> None:
        assert self._flowing is not None
        self._refusing = False
        self._call(self._flowing.set)

    def _call(self, fn: object) -> None:
        assert self._loop is not None
        done = threading.Event()

        def run() -> None:
            try:
                fn()  # type: ignore[operator]
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(10)

    def _close_all(self) -> None:
        for w in list(self._writers):
            with contextlib.suppress(Exception):
                w.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            writer.transport.abort()
            return
        try:
            up_r, up_w = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_w}
        try:
            await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer))
        finally:
            for w in (writer, up_w):
                self._writers.discard(w)
                with contextlib.suppress(Exception):
                    w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            # one direction ended: end the other one too (abort, as a dropped link does)
            with contextlib.suppress(Exception):
                writer.transport.abort()
