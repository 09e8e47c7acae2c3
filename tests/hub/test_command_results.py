"""Recording a gateway's command results (hub/db/commands.py) and reading a command's state."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session, sessionmaker

from hub.api.commands import out
from hub.db.commands import CommandState, GatewayCommand, record_results
from protocols import CommandResult, new_event_id

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


def _command(gw: str = "gw-1", state: CommandState = CommandState.SENT) -> GatewayCommand:
    return GatewayCommand(
        id=new_event_id(), gateway_id=gw, name="selftest", args={}, issued_by="t", issued_at=T0,
        expires_at=T0 + dt.timedelta(minutes=5), state=state.value, detail="",
    )  # fmt: skip


def _result(cmd: GatewayCommand, gw: str, ok: bool, detail: str) -> CommandResult:
    return CommandResult(
        gw=gw, seq=1, id=new_event_id(), ts=1, synced=True, command_id=cmd.id, command=cmd.name, ok=ok, detail=detail
    )


def test_the_first_answer_of_the_commands_own_gateway_wins(session_factory: sessionmaker[Session]) -> None:
    cmd, other = _command(), _command()
    with session_factory() as s, s.begin():
        s.add_all([cmd, other])
    at = T0 + dt.timedelta(seconds=2)
    stranger = _result(cmd, "gw-2", False, "not mine")  # another gateway naming this id
    assert record_results(session_factory, [stranger], at) == 0
    first, again = _result(cmd, "gw-1", True, "all 3 sensors answered"), _result(cmd, "gw-1", False, "late")
    assert record_results(session_factory, [first, again], at) == 1
    unknown = CommandResult(gw="gw-1", seq=2, id=new_event_id(), ts=1, synced=True,
                            command_id=new_event_id(), command="selftest", ok=True)  # fmt: skip
    assert record_results(session_factory, [unknown], at) == 0
    with session_factory() as s:
        row = s.get(GatewayCommand, cmd.id)
        assert row is not None
        assert (row.state, row.ok, row.detail, row.answered_at) == ("answered", True, "all 3 sensors answered", at)
        untouched = s.get(GatewayCommand, other.id)
        assert untouched is not None and untouched.state == "sent" and untouched.ok is None


def test_a_command_unanswered_past_its_expiry_reads_expired() -> None:
    cmd = _command()
    assert out(cmd, T0 + dt.timedelta(minutes=4)).state == "sent"
    assert out(cmd, T0 + dt.timedelta(minutes=5)).state == "expired"
    cmd.state, cmd.ok = CommandState.ANSWERED.value, True
    assert out(cmd, T0 + dt.timedelta(hours=1)).state == "answered"
    assert out(_command(state=CommandState.UNSENT), T0 + dt.timedelta(hours=1)).state == "unsent"
