"""A failing store (a real full disk, or SQLite refusing writes) never loses an event or a seq."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from edge.errors import StoreError
from edge.seqfile import SLOT, SeqFile
from edge.siren import Pattern
from edge.store import LANE_ALARM, Entry, Store
from protocols import Channel, Event, EventKind, EventState, new_event_id
from safehome.testing.acker import HubAcker
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import until
from tests.edge.conftest import make_agent, running, settings_for
from tests.edge.small_disk import fill, free, small_disk


async def test_event_is_kept_in_ram_and_delivered_when_the_store_refuses_writes(
    tmp_path: Path, mosquitto: Mosquitto, mock_factory: MockFactory
) -> None:
    hub = HubAcker(mosquitto.host, mosquitto.port, auto_ack=False)
    try:
        s = settings_for(tmp_path, mosquitto)
        agent = make_agent(s, mock_factory)
        async with running(agent):
            agent.store.next_seq()  # (reserve a seq block while writes still work)
            agent.store._db.execute("PRAGMA query_only=1")  # every write now fails in SQLite
            mock_factory.pin(agent.sensor("smoke-1").pins["contact"]).drive_low()
            [ev] = await hub.wait_for(s.gateway_id, Channel.EVENT)
            assert ev.kind is EventKind.SMOKE
            assert ev.id in agent.outbox.volatile and not agent.store.healthy
            agent.outbox.flush()  # still failing: stays in RAM
            assert ev.id in agent.outbox.volatile
            agent.store._db.execute("PRAGMA query_only=0")  # the disk recovers
            agent.outbox.flush()
            assert agent.store.contains(ev.id) and not agent.outbox.volatile
            hub.ack(s.gateway_id, ev.id)
            # then (alarms first) the buffer_failed trouble and its restore
            troubles = await hub.wait_for(
                s.gateway_id, Channel.EVENT, lambda m: m.kind is EventKind.BUFFER_FAILED, count=2
            )
            assert [m.state for m in troubles] == [EventState.ALARM, EventState.RESTORE]
            for m in troubles:
                hub.ack(s.gateway_id, m.id)
            await until(lambda: agent.outbox.depth() == 0, what="ack")
    finally:
        hub.close()


def test_a_full_disk_is_reported_with_its_cause_and_seq_never_goes_back(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        s = Store(disk / "b.db")
        fill(disk)
        seqs = [s.next_seq() for _ in range(13)]  # from the block reserved at open
        with pytest.raises(StoreError) as err:  # (the WAL's last page may still take a few)
            for seq in seqs:
                s.add_events([Entry(new_event_id(), LANE_ALARM, "event", seq, 1, b"{}")])
        assert "full" in str(err.value) and "no transaction is active" not in str(err.value)
        assert not s.healthy
        s.close()  # (a power cut: the numbers used are known nowhere on disk)
        s = Store(disk / "b.db")  # reboot, the disk still full
        assert s.next_seq() > seqs[-1]
        s.close()


def test_seq_file_survives_a_torn_write_and_old_buffers_keep_their_reservation(tmp_path: Path) -> None:
    s = Store(tmp_path / "b.db")
    s.put_meta("seq_reserved", 5000)  # a buffer written before the seq file existed
    s.close()
    s.seqfile.path.unlink()
    s = Store(tmp_path / "b.db")
    assert s.next_seq() == 5001
    s.close()
    Store(tmp_path / "b.db").close()  # one more boot: one more block
    reserved = SeqFile(tmp_path / "b.seq")
    assert reserved.read() == 7000
    data = bytearray(reserved.path.read_bytes())
    newest = 0 if data[8] % 2 == 0 else 1  # generation's low byte: which slot was last
    data[newest * SLOT + 20] ^= 0xFF  # a power cut tore the last write
    reserved.path.write_bytes(bytes(data))
    assert SeqFile(tmp_path / "b.seq").read() == 6000


async def test_a_full_disk_raises_buffer_failed_at_the_hub_and_at_home_until_it_recovers(
    tmp_path: Path, mosquitto: Mosquitto, mock_factory: MockFactory
) -> None:
    hub = HubAcker(mosquitto.host, mosquitto.port)
    try:
        with small_disk(tmp_path / "disk") as disk:
            s = settings_for(tmp_path, mosquitto, data_dir=disk)
            agent = make_agent(s, mock_factory)
            agent.buffer_retry_s = 0.2
            gw = s.gateway_id

            def failed(state: EventState) -> Callable[[Event], bool]:
                return lambda m: m.kind is EventKind.BUFFER_FAILED and m.state is state

            async with running(agent):
                fill(disk)  # (the WAL's last page may still take a write or two)
                await until(lambda: not agent.store.check(), what="the disk refusing writes")
                [ev] = await hub.wait_for(gw, Channel.EVENT, failed(EventState.ALARM))
                assert ev.sensor is None and agent.buffer_failed
                assert agent.state()["siren"] == Pattern.TROUBLE  # the chirp, and the LED flickers
                free(disk)  # someone cleaned the card
                [back] = await hub.wait_for(gw, Channel.EVENT, failed(EventState.RESTORE))
                assert back.seq > ev.seq and not agent.buffer_failed
                assert agent.state()["siren"] == Pattern.OFF
                await until(lambda: agent.outbox.depth() == 0, what="both acked")
    finally:
        hub.close()
