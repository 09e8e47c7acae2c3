"""The console's static side, without a browser: both catalogues carry the same keys, every
key the code asks for, and a label for every alarm kind, class, state, step, outcome, role,
gateway command and command state the hub knows; the page is served with its security headers and loads nothing from elsewhere."""

from __future__ import annotations

import json
import re

import httpx
from fastapi import FastAPI

from hub.alarms.classes import HUB_KINDS
from hub.alarms.engine.actions import EVENT_OF_ACTION
from hub.alarms.lifecycle import Action, Outcome, State
from hub.api.scopes import KEY_ROLE, TOKEN_ROLES, USER_ROLES
from hub.console import STATIC, mount_console
from hub.db.commands import CommandState
from protocols import AlarmClass, CommandName, EventKind
from tests.support.http import serve_app

LANGS = ("zh-CN", "en")


def catalogue(lang: str) -> dict[str, str]:
    data = json.loads((STATIC / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def code() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in STATIC.glob("*.js"))


def test_both_languages_have_the_same_keys_and_no_empty_text() -> None:
    zh, en = catalogue("zh-CN"), catalogue("en")
    assert set(zh) == set(en), sorted(set(zh) ^ set(en))
    assert [k for lang in (zh, en) for k, v in lang.items() if not v.strip()] == []
    # the Chinese catalogue is Chinese (a copied English entry is an untranslated one)
    han = re.compile(r"[\u4e00-\u9fff]")
    untranslated = [k for k, v in zh.items() if not han.search(v) and not k.startswith("lang.")]
    assert untranslated == [], untranslated


def test_every_key_the_code_uses_is_in_the_catalogues() -> None:
    literal = set(re.findall(r"""\bt(?:Or)?\(\s*["']([a-z_]+\.[a-z0-9_.-]+)["']""", code()))
    literal |= set(re.findall(r"""["']((?:login|error|board|conn|case|card|nav|fleet|command|command_state|connectivity|home|kpi|readings)\.[a-z_]+)["']""", code()))
    assert literal, "the pattern found no key: the test would pass vacuously"
    for lang in LANGS:
        missing = literal - set(catalogue(lang))
        assert not missing, (lang, sorted(missing))


def test_every_kind_class_state_step_and_outcome_of_the_hub_has_a_label() -> None:
    wanted = (
        {f"kind.{k.value}" for k in EventKind}
        | {f"kind.{k}" for k in HUB_KINDS}
        | {f"class.{c.value}" for c in AlarmClass}
        | {f"state.{s.value}" for s in State}
        | {f"action.{a.value}" for a in Action if a is not Action.NOTIFY}
        | {f"history.{a}" for a in EVENT_OF_ACTION}
        | {f"outcome.{o.value}" for o in Outcome}
        | {f"role.{r}" for r in [*TOKEN_ROLES, *USER_ROLES, KEY_ROLE]}
        | {f"lang.{lang}" for lang in LANGS}
        | {f"command.{c.value}" for c in CommandName}
        | {f"command_state.{c.value}" for c in CommandState}
        | {f"command_state.{c}" for c in ("expired", "other")}  # expired: read-time state
        | {f"connectivity.{c}" for c in ("online", "silent", "offline", "unknown")}
    )
    for lang in LANGS:
        missing = wanted - set(catalogue(lang))
        assert not missing, (lang, sorted(missing))


def test_the_page_is_served_with_its_headers_and_loads_only_its_own_files() -> None:
    app = FastAPI()
    mount_console(app)
    with serve_app(app) as base, httpx.Client(base_url=base) as client:
        r = client.get("/console/")
        assert r.status_code == 200 and '<div id="app">' in r.text
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
        for name in ("app.js", "api.js", "i18n.js", "console.css", "vendor/preact.mjs", "i18n/zh-CN.json"):
            assert client.get(f"/console/{name}").status_code == 200, name
        assert client.get("/console/%2e%2e/pyproject.toml").status_code == 404
    for path in [*STATIC.glob("*.html"), *STATIC.glob("*.js"), *STATIC.glob("*.css")]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href|import)\s*=?\s*\(?["'](https?:)?//""", text), path
        assert not re.search(r"""from\s+["']https?:""", text), path
