"""ansible/ passes ansible-lint's production profile (offline: galaxy is not reachable)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ANSIBLE = Path(__file__).resolve().parents[2] / "ansible"
LINT = Path(sys.executable).parent / "ansible-lint"


@pytest.mark.skipif(not LINT.exists(), reason="ansible-lint missing: `make venv` installs the dev extras")
def test_ansible_lint_production_profile() -> None:
    env = dict(os.environ, PATH=f"{LINT.parent}:{os.environ['PATH']}", NO_COLOR="1", ANSIBLE_CONFIG=str(ANSIBLE / "ansible.cfg"))
    r = subprocess.run([str(LINT), "--profile", "production", "--offline", "--nocolor", "."], cwd=ANSIBLE,
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "Profile 'production' was required, and it passed" in r.stdout + r.stderr
