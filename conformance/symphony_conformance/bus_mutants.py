"""Seeded-fault buses: the reference bus with one behaviour broken on purpose.

Each mutant is a :class:`~symphony_conformance.bus_testing.ReferenceBus` whose core has one fault,
registered in :data:`BUS_MUTANTS` with the requirement ids it breaks. The state machine of
:mod:`.bus_testing` must fail against every one of them with a :class:`BusViolation` naming one of
those ids; ``tests/bus`` checks that it does, which is how the machine's power is measured::

    from symphony_conformance.bus_mutants import BUS_MUTANTS
    from symphony_conformance.bus_testing import run_state_machine

    run_state_machine(BUS_MUTANTS["leaky_backpressure"].factory, profile="ci")  # raises BUS-035

As implementations under test (the profile ``bus`` of the suite)::

    symphony-conformance run --profile bus --impl python:symphony_conformance.bus_mutants:leaky_backpressure
"""

from __future__ import annotations

from bisect import insort
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Final

from symphony_ipc._errors import ErrorCode
from symphony_ipc._model import Message
from symphony_ipc.bus import BusCore
from symphony_ipc.bus._core import DeadLetter, _Endpoint, _Entry, _Outstanding

from ._adapters import ReferenceImplementation
from ._impl import Implementation, ImplInfo
from .bus_testing import BusUnderTest, ReferenceBus

__all__ = ["BUS_MUTANTS", "IMPLEMENTATIONS", "BusMutant", "BusMutantImplementation"]


@dataclass(frozen=True)
class BusMutant:
    """One seeded fault: what it breaks and how to build it."""

    name: str
    breaks: tuple[str, ...]
    """The requirement ids a run of the state machine must name (any one of them)."""
    description: str
    factory: Callable[[], BusUnderTest] = field(compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "breaks": list(self.breaks), "description": self.description}


# ------------------------------------------------------------------------------ the faulty cores


class _LeakyBackpressureCore(BusCore):
    """Seed 002's behaviour: when an endpoint is full the message goes in anyway."""

    def _room_after_sweep(self, ep: _Endpoint, need: int) -> bool:
        super()._room_after_sweep(ep, need)
        return True


class _NewestEvictingCore(BusCore):
    """A full dead-letter queue drops its newest entry to make room, keeping stale ones."""

    def _dead_letter(self, msg: Message, reason: ErrorCode, attempts: int, recipient: str) -> None:
        self._dead += 1
        dlq = self._dlq
        if dlq.maxlen == 0:
            self._evicted += 1
            return
        if len(dlq) == dlq.maxlen:
            dlq.pop()  # the wrong end
            self._evicted += 1
        dlq.append(DeadLetter(msg, reason, attempts, recipient, self.clock.now_ns()))


class _StopOnFailureCore(BusCore):
    """A failing handler ends the delivery run: the copies behind it stay pending."""

    def deliver(self, endpoint_id: str) -> int:
        ep = self._endpoint(endpoint_id)
        handler = ep.handler
        assert handler is not None
        delivered = 0
        while ep.queued:
            d = self.take(endpoint_id)
            if d is None:
                break
            try:
                handler(d.message, d.attempt)
                ok = True
            except Exception:
                ok = False
            self.settle(endpoint_id, d.message.header.id, ok)
            if not ok:
                break  # the fault
            delivered += 1
        return delivered


class _DeliversExpiredCore(BusCore):
    """No expiry check at delivery: a message whose ttl ran out while pending is delivered."""

    def deliver(self, endpoint_id: str) -> int:
        ep = self._endpoint(endpoint_id)
        handler = ep.handler
        assert handler is not None
        delivered = 0
        while ep.queued:
            entry = ep.pop()
            msg = entry[0]
            try:
                handler(msg, entry[1] + 1)
                ok = True
            except Exception:
                ok = False
            if ok:
                self._delivered += 1
                delivered += 1
            else:
                self._outcome(ep, entry, False)
        return delivered


class _NeverTimesOutCore(BusCore):
    """A request without an answer stays outstanding for ever."""

    def _time_out(self, rid: str, o: _Outstanding) -> None:
        return None


class _FifoEndpoint(_Endpoint):
    """One queue for every priority: plain arrival order (a priority inversion)."""

    __slots__ = ()

    def push(self, entry: _Entry) -> None:
        level = self.levels.get(0)
        if level is None:
            level = self.levels[0] = deque()
        if not level:
            insort(self.keys, 0)
        level.append(entry)
        self.queued += 1


class _FifoCore(BusCore):
    _endpoint_type = _FifoEndpoint


class _Lifo(deque[_Entry]):
    """A level that hands out its newest copy first."""

    def popleft(self) -> _Entry:
        return self.pop()


class _LifoEndpoint(_Endpoint):
    """Priorities are right, but within a level the newest copy goes first."""

    __slots__ = ()

    def push(self, entry: _Entry) -> None:
        key = -entry[0].header.priority
        if key not in self.levels:
            self.levels[key] = _Lifo()
        super().push(entry)


class _LifoCore(BusCore):
    _endpoint_type = _LifoEndpoint


def _bus(core: type[BusCore], name: str) -> Callable[[], BusUnderTest]:
    cls = type(name, (ReferenceBus,), {"core_class": core})

    def factory() -> BusUnderTest:
        bus: BusUnderTest = cls()
        return bus

    factory.__name__ = name
    return factory


BUS_MUTANTS: Final[dict[str, BusMutant]] = {
    m.name: m
    for m in (
        BusMutant(
            "leaky_backpressure",
            ("BUS-035", "BUS-034", "BUS-036"),
            "lets a message in when its recipient is full, as seed 002's bus does after its wait",
            _bus(_LeakyBackpressureCore, "leaky_backpressure"),
        ),
        BusMutant(
            "dlq_evicts_newest",
            ("BUS-040",),
            "a full dead-letter queue drops its newest entry instead of its oldest",
            _bus(_NewestEvictingCore, "dlq_evicts_newest"),
        ),
        BusMutant(
            "failure_stops_delivery",
            ("BUS-032",),
            "a failing handler stops the delivery of the copies behind it",
            _bus(_StopOnFailureCore, "failure_stops_delivery"),
        ),
        BusMutant(
            "delivers_expired",
            ("BUS-029",),
            "a message whose ttl ran out while it was pending is delivered",
            _bus(_DeliversExpiredCore, "delivers_expired"),
        ),
        BusMutant(
            "request_never_times_out",
            ("BUS-024",),
            "an unanswered request stays outstanding for ever",
            _bus(_NeverTimesOutCore, "request_never_times_out"),
        ),
        BusMutant(
            "fifo_ignores_priority",
            ("BUS-027",),
            "copies are delivered in arrival order whatever their priority",
            _bus(_FifoCore, "fifo_ignores_priority"),
        ),
        BusMutant(
            "lifo_within_priority",
            ("BUS-027", "BUS-028"),
            "within a priority level the newest copy is delivered first",
            _bus(_LifoCore, "lifo_within_priority"),
        ),
    )
}


# ------------------------------------------------------------------------------ as implementations


class BusMutantImplementation(ReferenceImplementation):
    """The reference implementation whose buses (profile ``bus``) have one mutant's fault: what
    ``--impl python:symphony_conformance.bus_mutants:NAME`` loads (``NAME`` or ``bus_NAME``)."""

    def __init__(self, mutant: BusMutant) -> None:
        super().__init__()
        self.mutant = mutant

    @property
    def info(self) -> ImplInfo:
        return replace(super().info, name=f"bus mutant {self.mutant.name} (of the reference)")

    def new_bus(self) -> BusUnderTest:
        return self.mutant.factory()


def _implementation_factory(mutant: BusMutant) -> Callable[[], Implementation]:
    def factory() -> Implementation:
        return BusMutantImplementation(mutant)

    factory.__name__ = factory.__qualname__ = f"bus_{mutant.name}"
    factory.__module__ = __name__
    return factory


#: ``bus_NAME`` -> a factory of the implementation with that bus mutant (for ``--impl`` and the
#: selftest catalogue, :mod:`symphony_conformance.mutants`).
IMPLEMENTATIONS: Final[dict[str, Callable[[], Implementation]]] = {
    f"bus_{m.name}": _implementation_factory(m) for m in BUS_MUTANTS.values()
}


def __getattr__(name: str) -> Callable[[], Implementation]:
    factory = IMPLEMENTATIONS.get(name) or IMPLEMENTATIONS.get(f"bus_{name}")
    if factory is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return factory
