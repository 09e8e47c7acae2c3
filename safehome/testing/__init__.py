"""Harnesses the tests and the benches share: real components started on free ports and
stand-ins that play the other side of the wire.

mosquitto
    a real Mosquitto broker of our own (config, ACLs, persistence, restart).
postgres
    a PostgreSQL server (the local one, or a throwaway cluster) and throwaway databases.
acker
    ``HubAcker``: a paho client that plays the hub's part for gateways (records uplink,
    answers with ``Ack`` items, sends configs and commands).
registry
    sample registers and seeding a hub database with them.
poll
    waiting for a condition by polling with a deadline (never a fixed sleep).
toml
    writing the edge agent's settings file from plain dicts.

``bench/`` imports these, never ``tests/`` (``tests/test_architecture.py`` checks it).
"""
