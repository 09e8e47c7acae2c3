"""Imports every module that defines tables, so that ``Base.metadata`` is complete
(for Alembic autogenerate and for tests). One line per feature that owns tables."""

from __future__ import annotations

from sqlalchemy import MetaData

from hub.alarms.store import incidents as _incidents
from hub.alarms.store import models as _alarms
from hub.api import models as _api
from hub.audit import models as _audit
from hub.db import commands as _commands
from hub.db import events as _events
from hub.db import state as _state
from hub.db.base import Base
from hub.notify import models as _notify
from hub.provision import models as _provision
from hub.registry import models as _registry
from hub.timeseries import models as _timeseries

_MODEL_MODULES = (_registry, _state, _events, _commands, _timeseries, _alarms, _incidents, _notify, _api, _provision, _audit)


def metadata() -> MetaData:
    """The metadata of all hub tables."""
    return Base.metadata
