"""Helpers of the bus tests: a core on a manual clock, message builders, a recording handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import symphony_ipc as s
from symphony_ipc.bus import BusConfig, BusCore

T0 = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z
SEC = 1_000_000_000


class Recorder:
    """Sync handlers that record (endpoint, payload, attempt) and fail on demand."""

    def __init__(self) -> None:
        self.log: list[tuple[str, Any, int]] = []
        self.failing: dict[str, int] = {}

    def handler(self, name: str) -> Callable[[s.Message, int], None]:
        def handle(msg: s.Message, attempt: int) -> None:
            n = self.failing.get(name, 0)
            if n:
                self.failing[name] = n - 1
                raise RuntimeError("boom")
            self.log.append((name, msg.payload, attempt))

        return handle

    def of(self, name: str) -> list[Any]:
        return [p for n, p, _ in self.log if n == name]


class Bus:
    """A BusCore on a ManualClock with recording handlers, plus message helpers."""

    def __init__(self, **limits: int) -> None:
        self.clock = s.ManualClock(T0)
        self.core = BusCore(BusConfig(**limits), clock=self.clock)
        self.rec = Recorder()

    def register(self, *names: str, handler: bool = True) -> None:
        for n in names:
            self.core.register(n, self.rec.handler(n) if handler else None)

    def msg(
        self,
        source: str,
        target: str,
        payload: Any = None,
        *,
        mtype: s.MessageType = s.MessageType.EVENT,
        **kw: Any,
    ) -> s.Message:
        return s.new_message(mtype, source, target, payload, clock=self.clock, **kw)

    def send(self, source: str, target: str, payload: Any = None, **kw: Any) -> s.Message:
        m = self.msg(source, target, payload, **kw)
        self.core.submit(m)
        return m

    def dlq(self) -> list[tuple[Any, str, int, str]]:
        return [
            (d.message.payload, d.reason.value, d.attempts, d.recipient) for d in self.core.dead_letters()
        ]
