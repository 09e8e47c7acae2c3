"""Ingest: the hub's MQTT consumer. Validates uplink messages, stores them exactly once,
acks after commit, tracks connectivity, tells the alarm engine what is new."""
