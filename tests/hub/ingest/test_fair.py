"""The ingest's scheduling core: class priority, round-robin per gateway, bounds, shedding,
and the flood watch. Pure: property tests against a plain model of the queue."""

from __future__ import annotations

from collections import Counter

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hub.ingest.fair import Admit, Bounds, FairQueue, FloodWatch, Rank, gateway_of, rank_of

GATEWAYS = [f"gw-{i}" for i in range(6)]
Item = tuple[str, Rank, int]  # gateway, rank, arrival number

offers = st.tuples(st.sampled_from(GATEWAYS), st.sampled_from(list(Rank)))
ops = st.lists(
    st.one_of(
        st.tuples(st.just("offer"), offers),
        st.tuples(
            st.just("take"), st.tuples(st.integers(1, 12), st.integers(1, 5), st.sampled_from([None, 3]))
        ),
    ),
    max_size=200,
)


@settings(max_examples=300)
@given(ops=ops, max_pending=st.integers(4, 40), gateway_pending=st.integers(1, 10))
# a heavy gateway and another of its rank (random ops rarely pile up more than heavy_at)
@example(
    ops=[("offer", ("gw-0", Rank.LIFE_SAFETY))] * 5
    + [("offer", ("gw-1", Rank.LIFE_SAFETY)), ("offer", ("gw-0", Rank.TEST)), ("offer", ("gw-2", Rank.TEST))]
    + [("take", (12, 5, 3))] * 4,
    max_pending=40,
    gateway_pending=10,
)
def test_every_admitted_message_is_taken_once_in_fair_order(
    ops: list[tuple[str, tuple[object, ...]]], max_pending: int, gateway_pending: int
) -> None:
    q: FairQueue[Item] = FairQueue(Bounds.of(max_pending, gateway_pending))
    model: list[Item] = []  # what is waiting, in arrival order
    admitted: list[Item] = []
    taken_all: list[Item] = []
    for n, (op, args) in enumerate(ops):
        if op == "offer":
            gw, rank = args
            assert isinstance(gw, str) and isinstance(rank, Rank)
            held_before, total_before = sum(1 for m in model if m[0] == gw), len(model)
            verdict = q.offer(gw, rank, (gw, rank, n))
            if rank is Rank.LIFE_SAFETY:
                assert verdict is Admit.ADMITTED  # never shed
            elif total_before >= max_pending:
                assert verdict is Admit.SHED_OVERLOAD
            elif total_before >= max_pending // 2 and held_before >= gateway_pending:
                assert verdict is Admit.SHED_GATEWAY  # the heavy gateway pays first
            else:
                assert verdict is Admit.ADMITTED
            if verdict is Admit.ADMITTED:
                model.append((gw, rank, n))
                admitted.append((gw, rank, n))
            assert len(q) == len(model)
            continue
        limit, per_gateway, heavy_at = args
        assert isinstance(limit, int) and isinstance(per_gateway, int)
        assert heavy_at is None or isinstance(heavy_at, int)
        held = Counter(m[0] for m in model)
        # heavy: more than heavy_at held; one message per batch at most, and none of a rank
        # in which a gateway that is not heavy has something waiting
        heavy = {g for g in GATEWAYS if heavy_at is not None and held[g] > heavy_at}
        light_ranks = {m[1] for m in model if m[0] not in heavy}
        batch = q.take(limit, per_gateway, heavy_at=heavy_at)
        assert len(batch) <= limit
        per_gw = Counter(m[0] for m in batch)

        def blocked(
            m: Item,
            heavy: set[str] = heavy,
            light_ranks: set[Rank] = light_ranks,
            per_gw: Counter[str] = per_gw,
            per_gateway: int = per_gateway,
        ) -> bool:
            """``m`` could not be in this batch (its gateway reached its bound)."""
            g, r, _n = m
            if g not in heavy:
                return per_gw[g] >= per_gateway
            return r in light_ranks or per_gw[g] >= 1

        assert all(n <= (1 if g in heavy else per_gateway) for g, n in per_gw.items())
        assert not any(m[0] in heavy and m[1] in light_ranks for m in batch), "a flood's message beside others"
        for m in batch:
            model.remove(m)
        taken_all += batch
        # most urgent first: whatever is left and more urgent than something taken belongs
        # to a gateway that reached its bound in this batch
        worst = max((m[1] for m in batch), default=None)
        for m in model:
            if worst is not None and m[1] < worst:
                assert blocked(m), (m, batch)
        # a full batch leaves nothing more urgent than its last rank from an unbounded gateway
        if len(batch) < limit:
            assert all(blocked(m) for m in model), "a short batch left takeable messages"
        # round-robin: within the last rank served, gateways still holding that rank got
        # within one message of each other (unless at their bound)
        if worst is not None:
            left = {m[0] for m in model if m[1] == worst}
            counts = [
                sum(1 for b in batch if b[0] == g and b[1] == worst)
                for g in left
                if not blocked((g, worst, 0))
            ]
            if counts:
                assert max(counts) - min(counts) <= 1
        assert len(q) == len(model)
        for gw in GATEWAYS:
            assert q.held(gw) == sum(1 for m in model if m[0] == gw)
    # FIFO per gateway and rank, nothing invented, nothing taken twice
    assert len(set(taken_all)) == len(taken_all)
    assert set(taken_all) <= set(admitted)
    for gw in GATEWAYS:
        for rank in Rank:
            order = [m[2] for m in taken_all if m[0] == gw and m[1] == rank]
            assert order == sorted(order)


@given(
    flood=st.integers(1, 3000),
    others=st.lists(st.sampled_from(GATEWAYS[1:]), min_size=1, max_size=5, unique=True),
    per_gateway=st.integers(1, 16),
    rank=st.sampled_from(list(Rank)),
)
def test_another_homes_first_message_is_in_the_next_batch(
    flood: int, others: list[str], per_gateway: int, rank: Rank
) -> None:
    """However much one gateway queued first (even life safety), each other gateway's
    message of the same rank is in the very next batch, within the first round."""
    q: FairQueue[Item] = FairQueue(Bounds.of(1_000_000, 64))
    for i in range(flood):
        q.offer("gw-0", rank, ("gw-0", rank, i))
    for gw in others:
        q.offer(gw, rank, (gw, rank, -1))
    batch = q.take(100, per_gateway)
    firsts = [m for m in batch if m[2] == -1]
    assert {m[0] for m in firsts} == set(others)
    # within the first round: at most one flood message before each of them
    positions = [batch.index(m) for m in firsts]
    assert max(positions) <= len(others)
    assert sum(1 for m in batch if m[0] == "gw-0") <= per_gateway


def test_lower_ranks_fill_what_a_bounded_flood_leaves() -> None:
    """A gateway flooding smoke events does not starve other gateways' heartbeats."""
    q: FairQueue[str] = FairQueue(Bounds.of(10_000, 64))
    for i in range(500):
        q.offer("hostile", Rank.LIFE_SAFETY, f"smoke-{i}")
    for gw in ("a", "b", "c"):
        q.offer(gw, Rank.SUPERVISORY, f"heartbeat-{gw}")
    batch = q.take(1000, 16)
    assert batch[:16] == [f"smoke-{i}" for i in range(16)]
    assert batch[16:] == ["heartbeat-a", "heartbeat-b", "heartbeat-c"]
    assert len(q) == 484


def test_take_restricted_to_ranks() -> None:
    q: FairQueue[str] = FairQueue(Bounds.of(10_000, 64))
    q.offer("a", Rank.TELEMETRY, "t")
    q.offer("a", Rank.TROUBLE, "e")
    assert q.head_rank() is Rank.TROUBLE
    assert q.take(10, 10, (Rank.TELEMETRY,)) == ["t"]
    assert q.take(10, 10) == ["e"]
    assert q.head_rank() is None


def event(kind: str) -> bytes:
    return orjson.dumps({"kind": kind, "gw": "g"})


def test_rank_of_peeks_the_event_kind() -> None:
    assert rank_of("event", event("smoke")) is Rank.LIFE_SAFETY
    assert rank_of("event", event("panic")) is Rank.LIFE_SAFETY
    assert rank_of("event", event("sensor_fault")) is Rank.SUPERVISORY
    assert rank_of("event", event("tamper")) is Rank.TROUBLE
    assert rank_of("event", event("test")) is Rank.TEST
    assert rank_of("status", b"{}") is Rank.SUPERVISORY
    assert rank_of("result", b"{}") is Rank.TROUBLE
    assert rank_of("telemetry", b"{}") is Rank.TELEMETRY
    # unreadable: last of the events (validation rejects it later)
    for bad in (b"not json", b"[1, 2]", event("flood"), orjson.dumps({"kind": 3}), b"{" + b" " * 5000 + b"}"):
        assert rank_of("event", bad) is Rank.TEST


def test_gateway_of_topic() -> None:
    assert gateway_of("safehome/v1/gw/home-7/event") == "home-7"
    assert gateway_of("garbage") == ""


# --- flood watch --------------------------------------------------------------------


@given(per_s=st.integers(1, 99), seconds=st.integers(1, 200))
def test_a_steady_rate_below_the_limit_never_floods(per_s: int, seconds: int) -> None:
    w = FloodWatch(limit=6000, window_s=60)
    for s in range(seconds):
        for k in range(per_s):
            assert not w.observe("gw", s + k / per_s)
        assert w.calmed(s + 0.999) == []
    assert w.flooding == set()


@given(burst=st.integers(6001, 30_000), start=st.floats(0, 1000), spread=st.floats(0, 59))
def test_a_burst_over_the_limit_within_a_window_floods_and_then_calms(
    burst: int, start: float, spread: float
) -> None:
    w = FloodWatch(limit=6000, window_s=60)
    opened = [w.observe("gw", start + spread * i / burst) for i in range(burst)]
    assert opened.count(True) == 1  # opened once, not once per message
    assert w.flooding == {"gw"}
    assert w.calmed(start + spread + 1) == []  # still counted in the window
    assert not w.observe("other", start + spread)
    end = start + spread + 121  # two windows of silence: nothing counted any more
    assert w.calmed(end) == ["gw"]
    assert w.flooding == set()
    assert w.rate("gw", end) == 0


def test_hysteresis_keeps_a_flooding_gateway_until_half_the_limit() -> None:
    w = FloodWatch(limit=100, window_s=10)
    for i in range(101):
        w.observe("gw", i * 0.01)
    assert w.flooding == {"gw"}
    # 60 messages a window: under the limit, above half of it: still flooding
    t = 10.0
    for _ in range(5):
        for i in range(60):
            w.observe("gw", t + i / 6)
        t += 10
        assert w.calmed(t - 0.01) == []
    for _ in range(2):
        t += 10
        for i in range(30):
            w.observe("gw", t + i / 3)
    assert w.calmed(t + 10) == ["gw"]


def test_adopted_gateway_is_restored_when_calm() -> None:
    w = FloodWatch(limit=100, window_s=10)
    w.adopt("gw")
    assert w.calmed(1.0) == ["gw"]


def test_a_heavy_gateway_gives_one_message_per_batch() -> None:
    """Holding more than ``heavy_at`` (far more than the edge keeps in flight), a gateway
    gives one message per batch: the batch another home's alarm waits for is small."""
    q: FairQueue[str] = FairQueue(Bounds.of(10_000, 64))
    for i in range(100):
        q.offer("hostile", Rank.LIFE_SAFETY, f"smoke-{i}")
    for i in range(20):
        q.offer("home", Rank.TROUBLE, f"home-{i}")
    assert q.take(1000, 16, heavy_at=32) == ["smoke-0", *(f"home-{i}" for i in range(16))]
    # a gateway within the bound is not heavy: up to per_gateway each
    q2: FairQueue[str] = FairQueue(Bounds.of(10_000, 64))
    for i in range(20):
        q2.offer("recovering", Rank.TELEMETRY, f"t-{i}")
    assert len(q2.take(1000, 16, heavy_at=32)) == 16


def test_a_heavy_gateways_message_is_never_in_a_batch_beside_anothers_of_its_rank() -> None:
    """Another home's smoke alarm gets a batch without the flood's smoke events: that batch's
    transaction does not store and decide one of them first."""
    q: FairQueue[str] = FairQueue(Bounds.of(10_000, 64))
    for i in range(100):
        q.offer("hostile", Rank.LIFE_SAFETY, f"smoke-{i}")
    q.offer("home", Rank.LIFE_SAFETY, "home-smoke")
    q.offer("other", Rank.SUPERVISORY, "other-heartbeat")
    assert q.take(1000, 16, heavy_at=32) == ["home-smoke", "other-heartbeat"]
    # nobody else waiting: the flood goes on, one per batch
    assert q.take(1000, 16, heavy_at=32) == ["smoke-0"]
    assert q.take(1000, 16, heavy_at=32) == ["smoke-1"]
