"""The hub's HTTP listener over TLS (``[hub.http] tls_certfile / tls_keyfile``): uvicorn with
the runner's own settings, a self-signed certificate, a client that verifies it."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hub.app import create_app
from hub.metrics import HubMetrics
from hub.runner import http_config
from hub.settings import HttpSettings, HubSettings
from safehome.testing.mosquitto import free_port
from safehome.testing.poll import until


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = tmp / "hub.crt", tmp / "hub.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return certfile, keyfile


async def test_https_listener_serves_and_plain_http_does_not(tmp_path: Path) -> None:
    certfile, keyfile = self_signed(tmp_path)
    http = HttpSettings(port=free_port(), tls_certfile=certfile, tls_keyfile=keyfile)
    server = uvicorn.Server(
        http_config(create_app(HubSettings(env="dev", http=http), HubMetrics(), {}), http)
    )
    task = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started, 10, "uvicorn started")
        verify = ssl.create_default_context(cafile=str(certfile))
        async with httpx.AsyncClient(verify=verify, timeout=10) as c:
            r = await c.get(f"https://127.0.0.1:{http.port}/healthz")
            assert r.status_code == 200 and r.json()["status"] == "ok"
        async with httpx.AsyncClient(timeout=10) as c:
            with pytest.raises(httpx.HTTPError):  # plain HTTP to the TLS port gets no answer
                await c.get(f"http://127.0.0.1:{http.port}/healthz")
            with pytest.raises(httpx.ConnectError):  # an unknown certificate is refused
                await c.get(f"https://127.0.0.1:{http.port}/healthz")
    finally:
        server.should_exit = True
        await task
