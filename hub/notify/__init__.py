"""Notifications: channels (console push, webhook, SMS/voice provider, home ack) behind one
:class:`~hub.notify.channel.Channel` protocol, and the outbox worker that delivers them with
retries so that a channel that is down never delays routing, escalation or other channels."""
