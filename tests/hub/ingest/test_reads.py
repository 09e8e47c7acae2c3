"""Buffered reads of the broker's stream: the same bytes as paho's small reads, fewer syscalls."""

from __future__ import annotations

import socket

import pytest

from hub.ingest.reads import BufferedReads


def test_small_reads_are_served_from_one_large_read() -> None:
    a, b = socket.socketpair()
    try:
        b.setblocking(False)
        payload = bytes(range(256)) * 40  # 10,240 bytes in one write
        a.sendall(payload)
        r = BufferedReads(b, size=4096)
        got = bytearray()
        got += r.recv(1)  # paho: the fixed header byte...
        assert r.pending() > 0  # ...the rest of the first 4 KiB is already here
        while len(got) < len(payload):
            got += r.recv(7)
        assert bytes(got) == payload
        assert r.pending() == 0
        with pytest.raises(BlockingIOError):  # nothing more: paho's "try again"
            r.recv(1)
        a.close()
        assert r.recv(5) == b""  # the end of the stream is passed on
        assert r.fileno() == b.fileno()  # everything else is the socket's
    finally:
        b.close()


def test_a_read_larger_than_the_buffer_goes_straight_through() -> None:
    a, b = socket.socketpair()
    try:
        a.sendall(b"x" * 100)
        r = BufferedReads(b, size=16)
        assert r.recv(1000) == b"x" * 100
        assert r.pending() == 0
    finally:
        a.close()
        b.close()
