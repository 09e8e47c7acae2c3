"""Per-gateway MQTT credentials: Mosquitto password file + SIGHUP, no broker restart.

The password file uses Mosquitto 2's own hash (``$7$``: PBKDF2-SHA512, 12-byte salt), so
``mosquitto_passwd`` and this module can edit the same file. Writes are atomic (temp file
+ rename) under an exclusive lock, so a concurrent reload never reads half a file. On
SIGHUP Mosquitto re-reads the file and disconnects clients whose credentials are gone.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import os
import secrets
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hub.broker.config import HUB_USER, chown_for_broker, write_text_atomic
from hub.broker.errors import BrokerError, CredentialError
from hub.broker.plugin import HUB_CLIENT_PREFIX
from protocols import ProtocolError, validate_id

ITERATIONS = 101  # Mosquitto's default; secrets are random 192-bit tokens, not words.
SALT_BYTES = 12
#: Usernames that are not gateways: a gateway with one of these ids would share its ACL.
RESERVED = frozenset({HUB_USER, "admin", "root", "mosquitto", "sys"})


def hash_password(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """Mosquitto 2 password-file hash of ``password``."""
    salt = salt if salt is not None else os.urandom(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    """True when ``password`` matches a ``$7$`` hash (used by tests and `broker gateway check`)."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    salt = base64.b64decode(parts[3])
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]))
    return hmac.compare_digest(base64.b64encode(digest).decode(), parts[4])


def new_secret() -> str:
    """A fresh random password (32 URL-safe characters)."""
    return secrets.token_urlsafe(24)


def gateway_username(gateway_id: str) -> str:
    """The MQTT username of a gateway: its id, which must be valid and not reserved."""
    try:
        gw = validate_id(gateway_id, "gateway_id")
    except ProtocolError as exc:
        raise CredentialError(f"{gateway_id!r} is not a valid gateway id: {exc.detail}") from exc
    if gw in RESERVED:
        raise CredentialError(f"{gw!r} is reserved and cannot be a gateway id")
    if gw.startswith(HUB_CLIENT_PREFIX):
        # a gateway's client id is its id: it must never equal one of the hub's connections
        raise CredentialError(f"{gw!r}: ids starting with {HUB_CLIENT_PREFIX!r} are the hub's client ids")
    return gw


class PasswordFile:
    """A Mosquitto password file, edited under an exclusive lock, written atomically."""

    def __init__(self, path: Path, owner: str = "root") -> None:
        self.path = path
        self.owner = owner

    def read(self) -> dict[str, str]:
        """username -> hash. A missing file is empty."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise BrokerError(f"cannot read password file {self.path}: {exc.strerror}") from exc
        entries: dict[str, str] = {}
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            user, sep, hashed = line.partition(":")
            if not sep:
                raise BrokerError(f"{self.path}:{n}: not 'user:hash'")
            entries[user] = hashed
        return entries

    def hash(self, password: str) -> str:
        """The stored form of ``password`` (the NATS backend's file stores bcrypt instead)."""
        return hash_password(password)

    def _write(self, entries: dict[str, str]) -> None:
        text = "".join(f"{u}:{h}\n" for u, h in sorted(entries.items()))
        write_text_atomic(self.path, text, mode=0o600)
        chown_for_broker(self.path, self.owner)

    @contextmanager
    def _locked(self) -> Iterator[dict[str, str]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(f".{self.path.name}.lock")
        with open(lock, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                entries = self.read()
                before = dict(entries)
                yield entries
                if entries != before:
                    self._write(entries)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def set(self, user: str, password: str, *, create: bool | None = None) -> None:
        """Set ``user``'s password. ``create=True``: must be new; ``False``: must exist."""
        with self._locked() as entries:
            if create is True and user in entries:
                raise CredentialError(f"{user!r} has credentials already (rotate or revoke them)")
            if create is False and user not in entries:
                raise CredentialError(f"{user!r} has no credentials to rotate")
            entries[user] = self.hash(password)

    def remove(self, user: str) -> None:
        with self._locked() as entries:
            if user not in entries:
                raise CredentialError(f"{user!r} has no credentials to revoke")
            del entries[user]

    def users(self) -> list[str]:
        return sorted(self.read())


def reload_broker(pid_path: Path) -> int:
    """SIGHUP the broker whose pid is in ``pid_path``: it re-reads password and ACL files."""
    try:
        pid = int(pid_path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise BrokerError(f"cannot read broker pid from {pid_path}: is the broker running?") from exc
    # A stale pid file may name an unrelated process now: SIGHUP would kill it.
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError as exc:
        raise BrokerError(f"no broker process {pid} (stale {pid_path}): the broker reads the file when it starts") from exc
    if comm != "mosquitto":
        raise BrokerError(f"process {pid} from {pid_path} is {comm!r}, not mosquitto: not signalled")
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError as exc:
        raise BrokerError(f"no broker process {pid} (stale {pid_path})") from exc
    except PermissionError as exc:
        raise BrokerError(f"not allowed to signal broker process {pid}") from exc
    return pid


class Credentials:
    """Create, rotate and revoke gateway credentials; each change reloads the broker."""

    def __init__(self, passwords: PasswordFile, pid_path: Path | None) -> None:
        self.passwords = passwords
        self.pid_path = pid_path

    def _reload(self) -> bool:
        if self.pid_path is None or not self.pid_path.exists():
            return False  # broker not running: it reads the file when it starts
        try:
            reload_broker(self.pid_path)
        except BrokerError as exc:
            raise BrokerError(f"credentials changed in {self.passwords.path}, but the broker was not reloaded: {exc}") from exc
        return True

    def create(self, gateway_id: str, password: str | None = None) -> str:
        user = gateway_username(gateway_id)
        secret = password or new_secret()
        self.passwords.set(user, secret, create=True)
        self._reload()
        return secret

    def rotate(self, gateway_id: str, password: str | None = None) -> str:
        """A new password; the old one stops working at the reload (connected clients are
        disconnected by Mosquitto and must reconnect with the new one)."""
        user = gateway_username(gateway_id)
        secret = password or new_secret()
        self.passwords.set(user, secret, create=False)
        self._reload()
        return secret

    def revoke(self, gateway_id: str) -> None:
        user = gateway_username(gateway_id)
        self.passwords.remove(user)
        self._reload()

    def set_hub(self, password: str) -> None:
        """The hub account's password (not a gateway, so not in the gateway id checks)."""
        self.passwords.set(HUB_USER, password)
        self._reload()
