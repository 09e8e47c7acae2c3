"""The hub's SQL database: one declarative Base, engines and sessions, migrations, the event store."""
