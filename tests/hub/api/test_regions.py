"""home ⊂ workstation ⊂ subdistrict ⊂ district, read from the registry (hub/api/regions.py)."""

from __future__ import annotations

from hub.api.regions import ancestry, within
from tests.hub.conftest import Hub


def test_a_region_and_every_region_above_it(hub: Hub) -> None:
    with hub.sessions() as s:
        assert ancestry(s, "home", "home-1") == [
            ("home", "home-1"),
            ("workstation", "ws-0001"),
            ("subdistrict", "sd-01"),
            ("district", "pudong"),
        ]
        assert ancestry(s, "subdistrict", "sd-01") == [("subdistrict", "sd-01"), ("district", "pudong")]
        assert ancestry(s, "home", "no-such-home") == []
        assert ancestry(s, "planet", "earth") == []
        assert within(s, "home", "home-1", "subdistrict", "sd-01")
        assert not within(s, "workstation", "ws-0001", "home", "home-1")
