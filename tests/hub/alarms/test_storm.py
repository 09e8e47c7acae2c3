"""The storm core: window, threshold, area, fold and settle decisions (pure, property tests)."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hub.alarms.storm import (
    STORM_KINDS,
    Candidate,
    Close,
    IncidentState,
    IncidentView,
    Join,
    Keep,
    OpenIncident,
    Single,
    StormPolicy,
    area_of,
    fold,
    foldable,
    held_until,
    settle,
)

T0 = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
LIFE_SAFETY = ["smoke", "gas", "panic", "heat", "co"]
OTHER = ["battery_low", "tamper", "sensor_silent", "clock_unsynced"]


@dataclass
class Model:
    """A tiny stand-in for the tables: what the I/O shell keeps, driven only by ``fold``."""

    policy: StormPolicy
    alarms: list[tuple[str, str | None, dt.datetime, str | None]] = field(default_factory=list)
    incidents: dict[str, tuple[str, dt.datetime]] = field(default_factory=dict)  #: id → (area, last)
    opened: list[str] = field(default_factory=list)  #: area of every incident opened
    routed: list[str] = field(default_factory=list)  #: kind of every alarm routed on its own

    def raise_(self, c: Candidate) -> object:
        area = area_of(self.policy, c.workstation_id, c.subdistrict_id)
        since = c.at - dt.timedelta(seconds=self.policy.window_s)
        recent = sum(
            1
            for kind, a, at, inc in self.alarms
            if a == area and inc is None and kind in self.policy.kinds and since < at <= c.at
        )
        open_inc = next(
            (IncidentView(i, last) for i, (a, last) in self.incidents.items() if a == area), None
        )
        d = fold(c, recent, open_inc, self.policy)
        if isinstance(d, Single):
            self.alarms.append((c.kind, area, c.at, None))
            self.routed.append(c.kind)
        elif isinstance(d, Join):
            self.alarms.append((c.kind, area, c.at, d.incident_id))
            self.incidents[d.incident_id] = (area or "", c.at)
        else:
            assert isinstance(d, OpenIncident)
            iid = f"inc-{len(self.opened)}"
            self.opened.append(d.area)
            # a new incident of the area: the old one had gone quiet (the shell closes it)
            self.incidents = {i: v for i, v in self.incidents.items() if v[0] != d.area}
            self.incidents[iid] = (d.area, c.at)
            self.alarms = [
                (k, a, at, iid if a == d.area and inc is None and k in self.policy.kinds and at > d.since else inc)
                for k, a, at, inc in self.alarms
            ]
            self.alarms.append((c.kind, area, c.at, iid))
        return d


def cand(kind: str, sd: str | None = "sd-1", ws: str | None = "ws-1", at: dt.datetime = T0) -> Candidate:
    return Candidate(kind, ws, sd, at)


policies = st.builds(
    StormPolicy,
    threshold=st.integers(1, 30),
    window_s=st.floats(1, 600),
    quiet_s=st.floats(1, 900),
    area=st.sampled_from(["subdistrict", "workstation"]),
    kinds=st.frozensets(st.sampled_from(sorted(STORM_KINDS | {"smoke", "panic", "tamper"})), min_size=1),
)


@given(policy=policies, kind=st.sampled_from(LIFE_SAFETY), recent=st.integers(0, 10_000), open_inc=st.booleans())
def test_a_life_safety_alarm_is_never_folded(policy: StormPolicy, kind: str, recent: int, open_inc: bool) -> None:
    inc = IncidentView("inc-1", T0) if open_inc else None
    assert fold(cand(kind), recent, inc, policy) == Single("life_safety")
    assert not foldable(policy, kind)


@given(
    policy=policies,
    n=st.integers(1, 400),
    span_s=st.floats(0, 1200),
    areas=st.integers(1, 5),
    data=st.data(),
)
@settings(max_examples=60, deadline=None)
def test_a_storm_makes_at_most_one_incident_per_area(
    policy: StormPolicy, n: int, span_s: float, areas: int, data: st.DataObject
) -> None:
    """Storm-kind alarms spread over ``span_s`` in a few areas: an area opens a second
    incident only after a quiet spell (no alarm of its own for ``quiet_s``), and routes
    alarms on its own only while it has no incident (fewer than ``threshold`` per window)."""
    kinds = sorted(policy.kinds - set(LIFE_SAFETY))
    assume(kinds)  # a kind list of life-safety kinds only folds nothing (tested above)
    model = Model(policy)
    offsets = sorted(data.draw(st.lists(st.floats(0, span_s), min_size=n, max_size=n)))
    seen: dict[str, list[float]] = {}
    for off in offsets:
        area = f"a{data.draw(st.integers(0, areas - 1))}"
        seen.setdefault(f"subdistrict:{area}" if policy.area == "subdistrict" else f"workstation:{area}", []).append(off)
        model.raise_(cand(data.draw(st.sampled_from(kinds)), sd=area, ws=area, at=T0 + dt.timedelta(seconds=off)))
    for area, times in seen.items():
        breaks = sum(1 for a, b in itertools.pairwise(times) if b - a > policy.quiet_s)
        assert model.opened.count(area) <= breaks + 1
        singles = sum(1 for _k, a, _at, inc in model.alarms if a == area and inc is None)
        windows = int(span_s / policy.window_s) + 1
        assert singles <= (policy.threshold - 1) * (breaks + 1) * windows


@given(policy=policies, n=st.integers(1, 200))
@settings(max_examples=60, deadline=None)
def test_a_burst_within_the_window_opens_at_the_threshold(policy: StormPolicy, n: int) -> None:
    """n alarms of one area at the same instant: the first threshold-1 routed on their own,
    the threshold-th opens the incident (and takes them in), every later one joins it."""
    kind = next(iter(sorted(policy.kinds - set(LIFE_SAFETY))), None)
    if kind is None:
        return
    model = Model(policy)
    decisions = [model.raise_(cand(kind)) for _ in range(n)]
    if n < policy.threshold:
        assert all(isinstance(d, Single) for d in decisions)
        assert model.opened == []
        return
    assert [type(d).__name__ for d in decisions] == (
        ["Single"] * (policy.threshold - 1) + ["OpenIncident"] + ["Join"] * (n - policy.threshold)
    )
    assert all(inc is not None for *_rest, inc in model.alarms)  # the early ones joined too


def test_other_kinds_and_alarms_without_an_area_are_never_folded() -> None:
    p = StormPolicy(threshold=1)
    for kind in OTHER:
        assert fold(cand(kind), 500, IncidentView("i", T0), p) == Single("not_storm_kind")
    assert fold(cand("gateway_offline", sd=None), 500, None, p) == Single("no_area")
    assert fold(cand("gateway_offline"), 500, None, StormPolicy(enabled=False)) == Single("disabled")


def test_area_by_policy() -> None:
    assert area_of(StormPolicy(), "ws-1", "sd-1") == "subdistrict:sd-1"
    assert area_of(StormPolicy(area="workstation"), "ws-1", "sd-1") == "workstation:ws-1"
    assert area_of(StormPolicy(area="workstation"), None, "sd-1") is None


def test_after_a_quiet_spell_a_new_storm_opens_a_new_incident() -> None:
    p = StormPolicy(threshold=3, window_s=60, quiet_s=300)
    late = T0 + dt.timedelta(seconds=301)
    assert fold(cand("mains_lost", at=late), 0, IncidentView("i", T0), p) == Single("below_threshold")
    assert fold(cand("mains_lost", at=late), 2, IncidentView("i", T0), p) == OpenIncident(
        "subdistrict:sd-1", late - dt.timedelta(seconds=60)
    )
    assert fold(cand("mains_lost", at=T0 + dt.timedelta(seconds=300)), 0, IncidentView("i", T0), p) == Join("i")


def state(members: int = 100, pushed: int = 100, open_members: int = 0, last_s: float = 0, pushed_s: float = 0) -> IncidentState:
    return IncidentState(
        T0 + dt.timedelta(seconds=last_s), members, pushed, T0 + dt.timedelta(seconds=pushed_s),
        tuple(f"a{i}" for i in range(open_members)),
    )  # fmt: skip


def test_settle_pushes_the_running_count_at_most_every_update_interval() -> None:
    p = StormPolicy(update_every_s=10, quiet_s=300)
    assert settle(state(members=120), T0 + dt.timedelta(seconds=9), p) == Keep(push_count=False)
    assert settle(state(members=120), T0 + dt.timedelta(seconds=10), p) == Keep(push_count=True)
    assert settle(state(members=100), T0 + dt.timedelta(seconds=60), p) == Keep(push_count=False)


@given(open_members=st.integers(0, 50), unfold_max=st.integers(0, 20), quiet=st.booleans())
def test_settle_closes_when_quiet_and_unfolds_the_few_still_open(open_members: int, unfold_max: int, quiet: bool) -> None:
    p = StormPolicy(quiet_s=300, unfold_max=unfold_max)
    now = T0 + dt.timedelta(seconds=300 if quiet else 299)
    d = settle(state(open_members=open_members), now, p)
    if quiet and open_members <= unfold_max:
        assert d == Close(tuple(f"a{i}" for i in range(open_members)))
    else:
        assert isinstance(d, Keep)


def test_bad_policies_are_refused_with_the_field() -> None:
    with pytest.raises(ValueError, match="threshold"):
        StormPolicy(threshold=0)
    with pytest.raises(ValueError, match="window_s"):
        StormPolicy(window_s=0)
    with pytest.raises(ValueError, match="unfold_max"):
        StormPolicy(unfold_max=-1)
    with pytest.raises(ValueError, match="hold_s"):
        StormPolicy(hold_s=-1)


def test_only_an_alarm_below_its_areas_threshold_is_held() -> None:
    """Held: a mass event may still take it in. Never a life-safety alarm, a member, or one
    that no mass event can take (no area, another kind)."""
    p = StormPolicy(hold_s=5)
    assert held_until(Single("below_threshold"), T0, p) == T0 + dt.timedelta(seconds=5)
    for d in (Single("life_safety"), Single("no_area"), Single("not_storm_kind"), Single("disabled"),
              Join("inc-1"), OpenIncident("subdistrict:sd-01", T0)):  # fmt: skip
        assert held_until(d, T0, p) is None
    assert held_until(Single("below_threshold"), T0, StormPolicy(hold_s=0)) is None
