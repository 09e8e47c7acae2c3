"""The ``safehome`` command: one entry point whose subcommand groups live in their packages."""
