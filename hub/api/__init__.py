"""The hub's HTTP API under ``/api/v1``: every route resolves the caller's bearer token to a
role and a region and is scoped by it (:mod:`hub.api.auth`)."""
