"""Read the broker's stream in large chunks instead of paho's few bytes at a time.

paho reads each MQTT packet with about four ``recv`` calls (one byte of header, the
length bytes, the body), and aiomqtt wakes up once per packet. Every ``recv`` releases the
GIL; while the ingest's storing thread is busy (validating a batch, an alarm decided in the
transaction) it takes the GIL each time and gives it back only after the switch interval
(5 ms). The receiver then took a few hundred messages a second from the broker, a flood
piled up in the broker's FIFO queue for the hub's connection, and another home's alarm
waited behind it there, where no priority applies. With one ``recv`` of up to 64 KiB per
wake-up (hundreds of events) and aiomqtt's own loop over ``pending()`` (written for TLS
sockets, which buffer the same way), the receiver keeps the backlog in the hub's queue,
where :mod:`hub.ingest.fair` orders it.
"""

from __future__ import annotations

from typing import Any

import aiomqtt

READ_SIZE = 64 * 1024


class BufferedReads:
    """A socket whose ``recv`` serves from one large read; everything else is the socket's."""

    def __init__(self, sock: Any, size: int = READ_SIZE) -> None:
        self._sock = sock
        self._size = size
        self._data = b""
        self._pos = 0

    def recv(self, bufsize: int) -> bytes:
        if self._pos >= len(self._data):
            data: bytes = self._sock.recv(max(bufsize, self._size))  # BlockingIOError passes
            if len(data) <= bufsize:
                return data  # all of it (b"" at the end of the stream)
            self._data, self._pos = data, 0
        start = self._pos
        self._pos = min(start + bufsize, len(self._data))
        return self._data[start : self._pos]

    def pending(self) -> int:
        """Bytes readable without the network (aiomqtt keeps reading while this is > 0)."""
        inner = getattr(self._sock, "pending", None)
        return len(self._data) - self._pos + (inner() if inner is not None else 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def buffer_reads(client: aiomqtt.Client) -> bool:
    """Wrap a connected client's socket in :class:`BufferedReads`; whether it was done."""
    paho = client._client
    sock = getattr(paho, "_sock", None)
    if sock is None or isinstance(sock, BufferedReads):
        return False
    paho._sock = BufferedReads(sock)
    return True
