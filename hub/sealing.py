"""Secrets the hub must read back in clear (webhook signing secrets: the hub signs with
them) are stored encrypted: Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) with
a key from the settings (``[hub.secrets] key_file``), never the key in the database.

Several keys may be configured (newest first): the first seals, every one opens, so a key
can be replaced without re-encrypting first.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_ENV = "SAFEHOME_HUB_SECRETS__KEY"
KEY_FILE_ENV = "SAFEHOME_HUB_SECRETS__KEY_FILE"
#: The development key (``env = "dev"`` without a configured key); refused everywhere else.
DEV_KEY = "c2FmZWhvbWUtZGV2ZWxvcG1lbnQta2V5LW5vdC1zZWM="


class SealingError(ValueError):
    """A key is malformed or not allowed, or a sealed value does not open with any key."""


def generate_key() -> str:
    return Fernet.generate_key().decode()


class SecretBox:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SealingError("no key configured")
        fernets = []
        for n, key in enumerate(keys, 1):
            try:
                fernets.append(Fernet(key.encode()))
            except ValueError as exc:
                raise SealingError(
                    f"key {n} is not a Fernet key (32 url-safe base64-encoded bytes); "
                    "generate one with: safehome hub secrets keygen"
                ) from exc
        self._fernet = MultiFernet(fernets)

    @classmethod
    def from_keys(cls, keys: list[str], *, allow_dev: bool) -> SecretBox:
        if not keys:
            if not allow_dev:
                raise SealingError("no key configured")
            return cls([DEV_KEY])
        if DEV_KEY in keys and not allow_dev:
            raise SealingError("the development key is refused outside dev")
        return cls(keys)

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise SealingError("a sealed secret does not open with any configured key (wrong key?)") from exc


def dev_box() -> SecretBox:
    """The development box (tests, ``env = "dev"``)."""
    return SecretBox([DEV_KEY])


def box_from_environment(what: str = "sealed secrets", key_file: Path | None = None) -> SecretBox:
    """The box named by ``key_file``, else ``$SAFEHOME_HUB_SECRETS__KEY_FILE``, else
    ``$SAFEHOME_HUB_SECRETS__KEY``, else (``SAFEHOME_HUB_ENV=dev`` only) the development key:
    for the CLI and migrations, which run without the hub's settings file."""
    path = key_file or (Path(os.environ[KEY_FILE_ENV]) if os.environ.get(KEY_FILE_ENV) else None)
    try:
        raw = path.read_text() if path is not None else os.environ.get(KEY_ENV, "").replace(",", "\n")
    except OSError as exc:
        raise SealingError(f"cannot read the secrets key file {path}: {exc.strerror}") from exc
    keys = [k.strip() for k in raw.splitlines() if k.strip()]
    try:
        return SecretBox.from_keys(keys, allow_dev=os.environ.get("SAFEHOME_HUB_ENV") == "dev")
    except SealingError as exc:
        raise SealingError(
            f"{what} need the hub's secrets key: {exc}; set {KEY_FILE_ENV} (the hub's [hub.secrets] "
            f"key_file) or {KEY_ENV}, or pass --key-file"
        ) from exc
