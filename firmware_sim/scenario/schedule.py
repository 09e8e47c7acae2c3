"""Release planned actions as a clock passes them. Pure: the caller supplies the time."""

from __future__ import annotations

from firmware_sim.scenario.plan import Action


class Scheduler:
    """``due(t)`` returns, in order, every action whose time is ≤ ``t`` and not yet released."""

    def __init__(self, actions: list[Action], speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.actions = sorted(actions)
        self.speed = speed
        self.pos = 0

    def due(self, elapsed: float) -> list[Action]:
        """``elapsed``: seconds since the scenario started (wall), scaled by ``speed``."""
        t = elapsed * self.speed
        start = self.pos
        while self.pos < len(self.actions) and self.actions[self.pos].t <= t:
            self.pos += 1
        return self.actions[start : self.pos]

    def next_in(self, elapsed: float) -> float | None:
        """Wall seconds until the next action (0 if overdue), None when finished."""
        if self.done:
            return None
        return max(0.0, self.actions[self.pos].t / self.speed - elapsed)

    @property
    def done(self) -> bool:
        return self.pos >= len(self.actions)
