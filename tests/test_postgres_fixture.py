"""The PostgreSQL test support: its own throwaway cluster works when no server lets us in
(as on a clean Debian machine, whose cluster on 5432 wants a password over TCP)."""

from __future__ import annotations

import psycopg
import pytest

from safehome.testing import postgres as pg


@pytest.mark.postgres
@pytest.mark.slow
def test_own_cluster_creates_and_drops_databases() -> None:
    workdir, port = pg._start_cluster()
    server = pg.PostgresServer(
        admin_url=f"postgresql://postgres@127.0.0.1:{port}/postgres", own_cluster=workdir
    )
    try:
        url = server.create_database()
        assert url.startswith(f"postgresql+psycopg://postgres@127.0.0.1:{port}/safehome_test_")
        with psycopg.connect(url.replace("+psycopg", ""), connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        server.drop_database(url)
        with psycopg.connect(server.admin_url) as conn:
            names = [r[0] for r in conn.execute("SELECT datname FROM pg_database")]
        assert url.rpartition("/")[2] not in names
    finally:
        server.close()
    assert not workdir.exists()
    assert not pg._port_answers("127.0.0.1", port)


def test_environment_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pg.ADMIN_URL_ENV, "postgresql+psycopg://admin@db.example:5433/postgres")
    server = pg.find_or_start_server()
    assert server.admin_url == "postgresql://admin@db.example:5433/postgres"
    assert server.own_cluster is None
