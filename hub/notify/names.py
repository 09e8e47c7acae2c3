"""The names of the notification world: channels and notification statuses (plain
string enums: stored as text, compared with plain strings alike)."""

from __future__ import annotations

import enum


class ChannelName(enum.StrEnum):
    """Every notification channel the hub knows; a hub worker runs those configured
    (console, webhook and home always; sms and voice with a provider)."""

    CONSOLE = "console"
    WEBHOOK = "webhook"
    SMS = "sms"
    VOICE = "voice"
    HOME = "home"


class NotificationStatus(enum.StrEnum):
    """``notifications.status``."""

    PENDING = "pending"  #: due at ``next_attempt_at`` (new, or retried after a failure)
    SENDING = "sending"  #: leased by a worker (``lease_owner`` until ``lease_until``)
    DELIVERED = "delivered"
    DEAD = "dead"  #: dead-lettered after the last attempt; stays in the log
    UNCONFIGURED = "unconfigured"  #: its channel is not run by this hub: never sent
    #: held (a storm-kind alarm's, ``[hub.alarms.storm] hold_s``) until its alarm joined a
    #: mass event: never sent, the incident's notifications tell it
    FOLDED = "folded"
