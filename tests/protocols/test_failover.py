"""Broker address lists and the failover walk over them (protocols/failover.py): pure."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from protocols.failover import MAX_SERVERS, NEXT_TRY_S, Address, Rotation, parse_address, parse_servers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hub.example", Address("hub.example", 8883)),
        ("hub.example:1883", Address("hub.example", 1883)),
        (" 10.0.0.2:8884 ", Address("10.0.0.2", 8884)),
        ("[::1]", Address("::1", 8883)),
        ("[fd00::2]:9000", Address("fd00::2", 9000)),
    ],
)
def test_addresses_parse(text: str, expected: Address) -> None:
    assert parse_address(text, 8883) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("hub:0", "port 0 is outside 1..65535"),
        ("hub:65536", "outside 1..65535"),
        ("hub:mqtt", "'mqtt' is not a number"),
        (":1883", "host is missing"),
        ("fd00::2", r"in brackets, e.g. \[fd00::2\]:8883"),
        ("[fd00::2", "IPv6"),
        ("mqtts://hub:8883", "no scheme"),
        ("hub 1883", "no scheme, path or spaces"),
    ],
)
def test_bad_addresses_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_address(text, 8883)


def test_a_list_names_the_bad_entry_and_the_limits() -> None:
    assert parse_servers(["a", "b:2"], 1) == (Address("a", 1), Address("b", 2))
    with pytest.raises(ValueError, match=r"^\[1\]: 'b:x'"):
        parse_servers(["a", "b:x"], 1)
    with pytest.raises(ValueError, match=r"\[2\]: a:1 is listed twice"):
        parse_servers(["a:1", "b", "a"], 1)
    with pytest.raises(ValueError, match=f"{MAX_SERVERS + 1} broker addresses, at most {MAX_SERVERS}"):
        parse_servers([f"n{i}" for i in range(MAX_SERVERS + 1)], 1)
    with pytest.raises(ValueError, match="empty"):
        parse_servers([], 1)


THREE = (Address("a", 1), Address("b", 1), Address("c", 1))


def rotation(key: str = "gw-1", addresses: tuple[Address, ...] = THREE) -> Rotation:
    return Rotation(addresses, key, lambda rounds: 100.0 + rounds, spread_s=2.0, rng=random.Random(1))


def test_failover_is_quick_and_backoff_comes_per_full_round() -> None:
    r = rotation()
    first = r.current
    delays = [r.down() for _ in range(7)]
    # two quick moves, then the round (all three failed) backs off; the next round longer
    assert all(0 <= d <= 2.0 for d in delays[:2])
    assert delays[2] == 100.0
    assert all(0 <= d <= 2.0 for d in delays[3:5])
    assert delays[5] == 101.0
    assert 0 <= delays[6] <= 2.0
    assert r.order[0] == first


def test_every_address_is_tried_once_per_round() -> None:
    r = rotation()
    seen = [r.current]
    for _ in range(2):
        r.down()
        seen.append(r.current)
    assert sorted(seen) == sorted(THREE)


def test_sticky_on_a_working_address_and_a_success_resets_the_round() -> None:
    r = rotation()
    r.down()
    r.down()
    on = r.current
    r.up()  # connected to the third address: it stays there
    assert r.current == on
    assert r.down() <= 2.0  # the link to it is lost: quickly to the next, no backoff
    assert r.current != on


def test_a_failed_connect_moves_on_soon_and_a_full_round_still_backs_off() -> None:
    """A connect that failed (of any kind) tries the next address after NEXT_TRY_S, not after
    the spread (here 50 s), which is for leaving a node that worked; a whole round failed backs
    off as before."""
    r = Rotation(THREE, "gw-1", lambda rounds: 100.0 + rounds, spread_s=50.0, rng=random.Random(1))
    first = r.current
    delays = [r.down(connect_failed=True) for _ in range(4)]
    lo, hi = NEXT_TRY_S
    assert all(lo <= d <= hi for d in delays[:2])
    assert delays[2] == 100.0
    assert lo <= delays[3] <= hi
    assert r.order[0] == first
    assert hi < r.down() <= 50.0  # an established link lost: the spread (seeded rng)


def test_one_address_backs_off_at_every_failure() -> None:
    r = rotation(addresses=(Address("a", 1),))
    assert [r.down(), r.down(), r.down()] == [100.0, 101.0, 102.0]
    r.up()
    assert r.down() == 100.0
    assert r.current == Address("a", 1)


def test_a_district_spreads_over_the_nodes_and_a_dead_node_over_the_rest() -> None:
    gws = [f"gw-{i:06d}" for i in range(3000)]
    first = Counter(rotation(g).current for g in gws)
    assert set(first) == set(THREE)
    assert min(first.values()) > 800  # about 1,000 each
    # every gateway on node a loses it: where do they go?
    moved: Counter[Address] = Counter()
    for g in gws:
        r = rotation(g)
        if r.current == THREE[0]:
            r.down()
            moved[r.current] += 1
    assert set(moved) == {THREE[1], THREE[2]}
    assert min(moved.values()) > 0.4 * sum(moved.values())


def test_the_order_is_the_same_in_every_process() -> None:
    assert rotation("gw-000042").order == rotation("gw-000042").order
