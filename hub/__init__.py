"""Central hub: broker management, registry, ingest, storage, alarms, API."""
