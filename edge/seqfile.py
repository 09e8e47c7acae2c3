"""Where the ``seq`` reservation lives: a small preallocated file overwritten in place.

SQLite in WAL mode needs new disk blocks for a commit (the WAL grows from empty after a
checkpoint or a restart), so on a full SD card a reservation kept in the buffer could
not be written: numbering went on unreserved and, after a power cut, the same seqs were
used again under other ids. Overwriting blocks a file already owns needs no free space
(ext4, vfat, tmpfs), so the reservation is written here, with ``pwrite`` + ``fsync``.

Two slots, each with a generation and a CRC: a write torn by a power cut spoils at most
the slot being written, and the other one still holds the previous reservation (nothing
of a new block is used before its ``fsync`` returned, so the older value is safe).
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

from edge.errors import StoreError

SLOT = 512  #: one sector: a slot is never split across two
MAGIC = b"SHSEQ001"
_RECORD = struct.Struct("<8sQQ")  # magic, generation, reserved
_CRC = struct.Struct("<I")


def _encode(generation: int, reserved: int) -> bytes:
    body = _RECORD.pack(MAGIC, generation, reserved)
    return (body + _CRC.pack(zlib.crc32(body))).ljust(SLOT, b"\0")


def _decode(slot: bytes) -> tuple[int, int] | None:
    body = slot[: _RECORD.size]
    crc = slot[_RECORD.size : _RECORD.size + _CRC.size]
    if len(crc) < _CRC.size or _CRC.unpack(crc)[0] != zlib.crc32(body):
        return None
    magic, generation, reserved = _RECORD.unpack(body)
    return (generation, reserved) if magic == MAGIC else None


class SeqFile:
    """The highest ``seq`` reserved so far; created (2 slots, fsynced) on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._generation = 0

    def read(self) -> int:
        """The reservation on disk (0 when there is none yet). Never raises for a bad slot."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise StoreError(f"cannot read seq reservation {self.path}: {exc}") from exc
        slots = [_decode(data[i * SLOT : (i + 1) * SLOT]) for i in range(2)]
        valid = [s for s in slots if s is not None]
        if not valid:
            return 0
        self._generation, reserved = max(valid)
        return reserved

    def write(self, reserved: int) -> None:
        """Durably record ``reserved`` (fsynced before returning); StoreError if refused."""
        generation = self._generation + 1
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                size = os.fstat(fd).st_size
                if size < 2 * SLOT:  # first use: allocate both slots once
                    os.pwrite(fd, b"\0" * (2 * SLOT - size), size)
                    os.fsync(fd)
                    _fsync_dir(self.path.parent)
                os.pwrite(fd, _encode(generation, reserved), (generation % 2) * SLOT)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StoreError(f"seq reservation {self.path} not written: {exc}") from exc
        self._generation = generation


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
