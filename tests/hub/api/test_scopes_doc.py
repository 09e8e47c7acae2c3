"""docs/api.md's scope and role tables, and migration 0012, say what hub/api/scopes.py grants."""

from __future__ import annotations

import re
from pathlib import Path

from hub.api.scopes import KEY_SCOPES, SCOPES, TOKEN_ROLES, USER_REGION_KINDS, USER_ROLES

DOC = (Path(__file__).resolve().parents[3] / "docs" / "api.md").read_text()


def table_after(heading: str) -> list[list[str]]:
    """The rows (cells, stripped) of the first table after ``heading``."""
    text = DOC[DOC.index(heading) :]
    rows = []
    for line in text.splitlines()[1:]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # header and rule


def names(cell: str) -> set[str]:
    return set(re.findall(r"`([a-z_]+:[a-z]+|provision)`", cell))


def test_the_scopes_table_lists_every_scope() -> None:
    assert [r[0].strip("`") for r in table_after("### Scopes")] == list(SCOPES)


def test_no_key_carries_what_the_doc_says_none_does() -> None:
    said = {r[0].strip("`") for r in table_after("### Scopes") if "no API key carries it" in r[1]}
    assert said == set(SCOPES) - KEY_SCOPES


def test_the_user_roles_table_matches_the_roles() -> None:
    rows = {r[0].strip("`"): r for r in table_after("### Console users")}
    assert set(rows) == set(USER_ROLES)
    for role, (_, regions, _scopes) in rows.items():
        assert set(re.findall(r"district|subdistrict|workstation", regions)) == set(
            USER_REGION_KINDS[role]
        ), role
    assert rows["district_admin"][2] == "every scope but `audit:read`"
    assert USER_ROLES["district_admin"] == frozenset(SCOPES) - {"audit:read"}
    assert names(rows["auditor"][2]) == USER_ROLES["auditor"]
    assert names(rows["installer"][2]) == USER_ROLES["installer"]
    assert names(rows["subdistrict_operator"][2]) == USER_ROLES["subdistrict_operator"]
    assert USER_ROLES["workstation_operator"] == USER_ROLES["subdistrict_operator"]
    assert USER_ROLES["subdistrict_supervisor"] == USER_ROLES["subdistrict_operator"] | names(
        rows["subdistrict_supervisor"][2]
    )


def test_the_token_roles_table_matches_the_roles() -> None:
    rows = {r[0]: r[1] for r in table_after("### Command-line role tokens")}
    assert set(rows) == set(TOKEN_ROLES)
    assert names(rows["viewer"]) == TOKEN_ROLES["viewer"]
    assert TOKEN_ROLES["operator"] == TOKEN_ROLES["viewer"] | names(rows["operator"])
    assert TOKEN_ROLES["supervisor"] == TOKEN_ROLES["operator"] | names(rows["supervisor"])
    assert names(rows["installer"]) == TOKEN_ROLES["installer"]


def test_migration_0012_gave_existing_role_tokens_the_same_scopes() -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[3] / "hub" / "migrations" / "versions" / "0012_auth_audit.py"
    spec = importlib.util.spec_from_file_location("m0012", path)
    assert spec is not None and spec.loader is not None
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    assert {role: frozenset(text.split()) for role, text in m.ROLE_SCOPES.items()} == TOKEN_ROLES
