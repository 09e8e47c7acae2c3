"""Sealed secrets: Fernet with keys from the settings, several keys (the first seals), and
``safehome hub secrets keygen``."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli import hub as hub_cli
from hub.sealing import DEV_KEY, SealingError, SecretBox, generate_key


def test_seal_open_and_key_rotation() -> None:
    old, new = generate_key(), generate_key()
    sealed_old = SecretBox([old]).seal("s" * 43)
    box = SecretBox([new, old])
    assert box.open(sealed_old) == "s" * 43  # an old key still opens
    sealed = box.seal("s" * 43)
    assert "s" * 8 not in sealed and sealed != box.seal("s" * 43)  # random IV: never the same twice
    assert SecretBox([new]).open(sealed) == "s" * 43  # the first key seals
    with pytest.raises(SealingError, match="does not open with any configured key"):
        SecretBox([old]).open(sealed)
    with pytest.raises(SealingError, match="key 2 is not a Fernet key"):
        SecretBox([new, "short"])
    with pytest.raises(SealingError, match="development key is refused"):
        SecretBox.from_keys([DEV_KEY], allow_dev=False)


def test_keygen_writes_an_owner_only_file_once(tmp_path: Path) -> None:
    out = tmp_path / "secrets.key"
    r = CliRunner().invoke(hub_cli, ["secrets", "keygen", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    SecretBox([out.read_text().strip()])  # a valid key
    again = CliRunner().invoke(hub_cli, ["secrets", "keygen", "--out", str(out)])
    assert again.exit_code != 0 and "not overwritten" in again.output
