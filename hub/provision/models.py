"""The provisioning record of a gateway: its config revision, credential kind, wiring
overrides, test mode, last walk test and sign-off. One row per provisioned gateway.

Test mode is a deadline (``test_mode_until``), not a flag: a walk test abandoned halfway
(laptop closed, phone out of battery) ends by itself, and the home is never left with its
alarms diverted from people.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base

ID = String(64)


class ProvisionedGateway(Base):
    __tablename__ = "provisioned_gateways"

    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id", ondelete="CASCADE"), primary_key=True)
    home_id: Mapped[str] = mapped_column(ID, index=True)
    revision: Mapped[int] = mapped_column(default=1)  #: of the Config the hub delivers
    credential: Mapped[str] = mapped_column(String(16), default="password")  #: password | certificate
    wiring: Mapped[dict[str, Any]] = mapped_column(default=dict)  #: sensor id -> {param: value}
    provisioned_at: Mapped[dt.datetime]
    provisioned_by: Mapped[str] = mapped_column(String(200), default="")
    test_mode_until: Mapped[dt.datetime | None] = mapped_column(default=None)
    walktest_started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    walktest_ended_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    walktest_passed: Mapped[bool | None] = mapped_column(default=None)
    walktest_result: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    signed_off_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    signed_off_by: Mapped[str] = mapped_column(String(200), default="")
