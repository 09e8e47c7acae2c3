"""The one logging setup of every safehome process (hub worker, edge agent, simulators,
benches).

Every module logs through ``logging.getLogger(__name__)`` (``hub.ingest.service``,
``edge.agent``, ...): levels and handlers are set once, here, on the root logger, in one
format. It lives in ``protocols/`` because that is the one package every part may import
(docs/architecture.md, dependency direction); it uses only the standard library.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

#: The one line format: time, level, logger name (the module), message.
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(
    level: int | str = logging.INFO,
    *,
    loud: dict[str, int | str] | None = None,
    stream: TextIO | None = None,
) -> None:
    """Send every logger's records at ``level`` or above to ``stream`` (stderr) in
    :data:`FORMAT`; ``loud`` sets other levels for some loggers by name (e.g.
    ``{"bench.faults": "INFO"}`` under a WARNING root).

    Like :func:`logging.basicConfig` it leaves a root logger that already has handlers
    alone (a test harness capturing the logs, or a process that configured itself first).
    """
    logging.basicConfig(
        level=level.upper() if isinstance(level, str) else level,
        format=FORMAT,
        stream=stream if stream is not None else sys.stderr,
    )
    for name, lvl in (loud or {}).items():
        logging.getLogger(name).setLevel(lvl.upper() if isinstance(lvl, str) else lvl)
