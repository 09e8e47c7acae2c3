"""Exceptions of the ingest service.

IngestError
    the ingest cannot run: the broker refuses the hub's login, or the settings do not
    allow a connection. Bad *messages* are not errors: they are
    :class:`protocols.ProtocolError`, counted by reason and logged, never raised out of
    the consumer loop.
"""

from __future__ import annotations


class IngestError(Exception):
    """The ingest service cannot do its job."""
