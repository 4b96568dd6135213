"""Model-based testing of a message bus against spec/bus.md, for use from your own tests.

Three parts, in the spirit of ``zarr.testing.stateful``:

* :class:`BusUnderTest`, the operations the state machine drives, with messages in their JSON
  data-model form (``spec/message.schema.json``), so a bus in another process behind the driver
  protocol can implement it as easily as a Python one;
* :class:`BusModel`, a plain Python model of spec/bus.md: endpoints, subscriptions, rules, pending
  queues, outstanding requests, the dead-letter queue, history, statistics and the clock;
* :class:`BusStateMachine`, a Hypothesis ``RuleBasedStateMachine`` that drives a bus and the model
  through random sequences of operations and checks every outcome, delivery, dead letter and
  statistic against the model. A failure is a :class:`BusViolation` whose message starts with the
  requirement id it breaks (``BUS-027: ...``).

Run it against your bus::

    from symphony_conformance.bus_testing import make_test_case, run_state_machine

    TestMyBus = make_test_case(MyBusAdapter)  # a unittest.TestCase class, collected by pytest

    def test_my_bus() -> None:
        run_state_machine(MyBusAdapter, profile="ci")

Time is virtual: the machine moves the bus's clock with :meth:`BusUnderTest.set_clock` and never
sleeps, so a run is deterministic for a given seed.
"""

from __future__ import annotations

import itertools
import re
import unittest
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Protocol, runtime_checkable

import hypothesis
from hypothesis import HealthCheck
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import symphony_ipc as ref
from symphony_ipc._codec import message_from_data, message_to_data
from symphony_ipc.bus import BusConfig, BusCore, Rule, dead_letter_to_data

from ._impl import ImplError, MessageData

NS: Final = 1_000_000_000
T0: Final = 1_767_225_600 * NS  #: 2026-01-01T00:00:00Z, where every run's clock starts
SYSTEM: Final = "bus:system"
BROADCAST: Final = "bus:broadcast"
I63: Final = 2**63 - 1

#: code -> (category, recoverable) of the codes a bus reports (spec/bus.md section 12, and the
#: codes of spec/protocol.md section 2 it reuses). A test keeps it in step with the spec.
ERROR_TABLE: Final[dict[str, tuple[str, bool]]] = {
    "BACKPRESSURE": ("resource", True),
    "NO_ROUTE": ("routing", True),
    "UNMATCHED_RESPONSE": ("routing", True),
    "REQUEST_TIMEOUT": ("timeout", True),
    "HANDLER_FAILED": ("delivery", True),
    "ENDPOINT_CLOSED": ("delivery", True),
    "INVALID_OPERATION": ("validation", True),
    "MESSAGE_TOO_LARGE": ("resource", True),
    "TTL_EXPIRED": ("expiry", True),
    "INVALID_PROTOCOL_VERSION": ("version", False),
    "INVALID_ENDPOINT_ID": ("validation", True),
}


@runtime_checkable
class BusUnderTest(Protocol):
    """What the state machine needs from a bus (spec/bus.md section 13).

    Every operation may raise :class:`ImplError` (``symphony_conformance.bus_testing.ImplError``)
    with a spec error code: that is an expected outcome the machine checks. Endpoints registered through this
    interface have a handler that accepts every copy (recording it for :meth:`received`) except
    while :meth:`set_failing` tells it to raise.
    """

    def configure(self, limits: Mapping[str, int]) -> None:
        """Called once, first: ``max_pending``, ``dlq_max``, ``history_max``, ``max_attempts``,
        ``request_timeout_ns``. The backpressure timeout is 0: :meth:`send` never waits."""

    def set_clock(self, now_ns: int) -> None:
        """Move the bus's clock to ``now_ns`` (never backwards) and poll: due requests time out."""

    def register(self, endpoint: str) -> None: ...

    def unregister(self, endpoint: str) -> None: ...

    def set_failing(self, endpoint: str, failures: int) -> None:
        """The endpoint's handler raises on its next ``failures`` attempts, then accepts again."""

    def subscribe(self, endpoint: str, topic: str) -> None: ...

    def unsubscribe(self, endpoint: str, topic: str) -> None: ...

    def add_rule(self, rule: Mapping[str, Any]) -> None:
        """A rule object of spec/bus.md section 4 (every member present)."""

    def remove_rule(self, rule_id: str) -> None: ...

    def enable_rule(self, rule_id: str, enabled: bool) -> None: ...

    def send(self, message: MessageData) -> None:
        """Submit a message: direct, publish, broadcast, request or response, as its target and
        type say (spec/bus.md section 1)."""

    def deliver(self, endpoint: str) -> None:
        """Deliver the endpoint's pending copies, with retries, until its queue is empty."""

    def received(self, endpoint: str) -> list[dict[str, Any]]:
        """The copies the endpoint's handler accepted since the last call, in order, as
        ``{"message": MESSAGE, "attempt": N}``; empties the record."""
        ...

    def dead_letters(self) -> list[dict[str, Any]]:
        """The dead-letter queue, oldest first: ``{"message", "reason", "attempts", "recipient",
        "time"}`` (``time`` in RFC 3339)."""
        ...

    def stats(self) -> dict[str, Any]:
        """The statistics of BUS-043."""
        ...

    def history(self) -> list[MessageData]: ...

    def close(self) -> None: ...


class BusViolation(AssertionError):
    """The bus under test broke a requirement; the message starts with its id.

    Each requirement gets its own subclass, so Hypothesis keeps a failure's requirement while it
    shrinks (it tells failures apart by exception type and place).
    """

    requirement: ClassVar[str] = ""
    #: other requirements that explain the same observation equally well (rare: see
    #: :func:`check_dead_letters`); the message names them too
    alternatives: tuple[str, ...] = ()


_VIOLATIONS: dict[str, type[BusViolation]] = {}


def violation(requirement: str, text: str, also: tuple[str, ...] = ()) -> BusViolation:
    cls = _VIOLATIONS.get(requirement)
    if cls is None:
        name = "BusViolation_" + requirement.replace("-", "_")
        cls = _VIOLATIONS[requirement] = type(name, (BusViolation,), {"requirement": requirement})
    err = cls(f"{requirement}: {text}" + (f" (or {', '.join(also)})" if also else ""))
    err.alternatives = also
    return err


def fail(requirement: str, text: str, also: tuple[str, ...] = ()) -> None:
    raise violation(requirement, text, also)


# ---------------------------------------------------------------------------------------- model


def format_rfc3339(ns: int) -> str:
    """Canonical RFC 3339 (COD-001) of an instant; the model's only formatting need."""
    import time

    secs, frac = divmod(ns, NS)
    t = time.gmtime(secs)
    base = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    if frac == 0:
        return base + "Z"
    if frac % 1_000_000 == 0:
        return f"{base}.{frac // 1_000_000:03d}Z"
    if frac % 1000 == 0:
        return f"{base}.{frac // 1000:06d}Z"
    return f"{base}.{frac:09d}Z"


@dataclass
class Copy:
    message: MessageData
    attempts: int = 0  # failed attempts so far


@dataclass
class ModelEndpoint:
    name: str
    queue: list[Copy] = field(default_factory=list)  # in arrival order
    reserved: int = 0
    failing: int = 0

    def next_index(self) -> int:
        """Highest priority first, then arrival order (BUS-027)."""
        best = 0
        for i, c in enumerate(self.queue):
            if _prio(c.message) > _prio(self.queue[best].message):
                best = i
        return best

    def in_delivery_order(self) -> list[Copy]:
        return sorted(self.queue, key=lambda c: -_prio(c.message))  # stable: FIFO within a level


@dataclass
class Outstanding:
    id: str
    requester: str
    target: str
    deadline: int
    priority: int


@dataclass
class Outcome:
    """What the model says an operation does: ``code`` None for success; ``requirement`` the
    requirement that decides it (cited when the bus disagrees)."""

    code: str | None
    requirement: str
    why: str


def _prio(msg: MessageData) -> int:
    return int(msg["header"]["priority"])


def _mid(msg: MessageData) -> str:
    return str(msg["header"]["id"])


def _match(pattern: str | None, value: str) -> bool:
    if pattern is None:
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return pattern == value


class BusModel:
    """spec/bus.md as plain Python: slow, obvious, and independent of any bus implementation."""

    def __init__(self, limits: Mapping[str, int], now_ns: int) -> None:
        self.limits = dict(limits)
        self.now = now_ns
        self.endpoints: dict[str, ModelEndpoint] = {}
        self.subs: dict[str, list[str]] = {}
        self.rules: list[dict[str, Any]] = []
        self.outstanding: dict[str, Outstanding] = {}
        self.dlq: list[dict[str, Any]] = []
        self.dead_ever: list[dict[str, Any]] = []
        self.dead_ops: list[int] = []  # the operation (counter) that made each entry of dead_ever
        self.op = 0
        self.history: list[MessageData] = []
        self.received: dict[str, list[dict[str, Any]]] = {}
        self.expiry: dict[str, int] = {}  # message id -> the last instant it is alive
        self.accepted = self.rejected = self.delivered = self.failed = 0
        self.dead = self.evicted = 0
        self.per_topic: dict[str, int] = {}
        self.per_sender: dict[str, int] = {}

    # -- helpers

    def expired(self, msg: MessageData) -> bool:
        last = self.expiry.get(_mid(msg))
        return last is not None and self.now > last

    def load(self, name: str) -> int:
        ep = self.endpoints[name]
        return len(ep.queue) + ep.reserved

    def dead_letter(self, msg: MessageData, reason: str, attempts: int, recipient: str) -> None:
        entry = {
            "message": msg,
            "reason": reason,
            "attempts": attempts,
            "recipient": recipient,
            "time": format_rfc3339(self.now),
        }
        self.dead += 1
        self.dead_ever.append(entry)
        self.dead_ops.append(self.op)
        cap = self.limits["dlq_max"]
        if cap == 0:
            self.evicted += 1
            return
        if len(self.dlq) == cap:
            self.dlq.pop(0)
            self.evicted += 1
        self.dlq.append(entry)

    def answer(self, o: Outstanding, code: str) -> None:
        """The bus's own answer (BUS-024, BUS-037); its id is the bus's to choose (None here)."""
        category, recoverable = ERROR_TABLE[code]
        msg: MessageData = {
            "header": {
                "id": None,
                "correlation_id": o.id,
                "message_type": "Error",
                "source": SYSTEM,
                "target": o.requester,
                "timestamp": format_rfc3339(self.now),
                "ttl": None,
                "priority": o.priority,
                "version": {"major": 1, "minor": 0},
            },
            "payload": {"code": code, "category": category, "recoverable": recoverable},
            "metadata": {},
        }
        ep = self.endpoints[o.requester]
        ep.reserved -= 1
        ep.queue.append(Copy(msg))

    def sweep(self, name: str) -> None:
        """Dead-letter the expired copies of a full endpoint, in delivery order (BUS-035)."""
        ep = self.endpoints[name]
        for c in ep.in_delivery_order():
            if self.expired(c.message):
                self.dead_letter(c.message, "TTL_EXPIRED", c.attempts, name)
        ep.queue = [c for c in ep.queue if not self.expired(c.message)]

    # -- operations

    def register(self, name: str) -> Outcome:
        if name.startswith(("topic:", "bus:")):
            return Outcome("INVALID_ENDPOINT_ID", "BUS-002", f"{name!r} has a reserved prefix")
        if name in self.endpoints:
            return Outcome("INVALID_OPERATION", "BUS-038", f"{name!r} is registered already")
        self.endpoints[name] = ModelEndpoint(name)
        self.received[name] = []
        return Outcome(None, "BUS-038", "registered")

    def unregister(self, name: str) -> Outcome:
        self.op += 1
        ep = self.endpoints.get(name)
        if ep is None:
            return Outcome("INVALID_OPERATION", "BUS-038", f"{name!r} is not registered")
        del self.endpoints[name]
        for rid, o in list(self.outstanding.items()):
            if o.requester == name:
                del self.outstanding[rid]
        for rid, o in list(self.outstanding.items()):
            if o.target == name:
                del self.outstanding[rid]
                self.answer(o, "ENDPOINT_CLOSED")
        for c in ep.in_delivery_order():
            self.dead_letter(c.message, "ENDPOINT_CLOSED", c.attempts, name)
        for subs in self.subs.values():
            if name in subs:
                subs.remove(name)
        return Outcome(None, "BUS-037", "unregistered")

    def subscribe(self, name: str, topic: str) -> Outcome:
        if name not in self.endpoints:
            return Outcome("INVALID_OPERATION", "BUS-013", f"{name!r} is not registered")
        subs = self.subs.setdefault(topic, [])
        if name not in subs:
            subs.append(name)
        return Outcome(None, "BUS-013", "subscribed")

    def unsubscribe(self, name: str, topic: str) -> Outcome:
        if name not in self.endpoints:
            return Outcome("INVALID_OPERATION", "BUS-013", f"{name!r} is not registered")
        subs = self.subs.get(topic, [])
        if name in subs:
            subs.remove(name)
        return Outcome(None, "BUS-013", "unsubscribed")

    def add_rule(self, r: Mapping[str, Any]) -> Outcome:
        if any(x["id"] == r["id"] for x in self.rules):
            return Outcome("INVALID_OPERATION", "BUS-018", f"rule {r['id']!r} exists")
        self.rules.append(dict(r))
        return Outcome(None, "BUS-018", "rule added")

    def remove_rule(self, rid: str) -> Outcome:
        for i, x in enumerate(self.rules):
            if x["id"] == rid:
                del self.rules[i]
                return Outcome(None, "BUS-018", "rule removed")
        return Outcome("INVALID_OPERATION", "BUS-018", f"no rule {rid!r}")

    def enable_rule(self, rid: str, enabled: bool) -> Outcome:
        for x in self.rules:
            if x["id"] == rid:
                x["enabled"] = enabled
                return Outcome(None, "BUS-018", "rule enabled" if enabled else "rule disabled")
        return Outcome("INVALID_OPERATION", "BUS-018", f"no rule {rid!r}")

    def set_clock(self, now: int) -> list[str]:
        """Move the clock; return the ids of the requests that timed out (BUS-024)."""
        self.now = now
        due = sorted(
            (o for o in self.outstanding.values() if now > o.deadline),
            key=lambda o: o.deadline,  # stable: acceptance order among equal deadlines
        )
        for o in due:
            del self.outstanding[o.id]
            self.answer(o, "REQUEST_TIMEOUT")
        return [o.id for o in due]

    def send(self, msg: MessageData, expiry: int | None) -> Outcome:
        self.op += 1
        out = self._send(msg, expiry)
        if out.code is not None:
            self.rejected += 1
        return out

    def _send(self, msg: MessageData, expiry: int | None) -> Outcome:
        h = msg["header"]
        mid, mtype, source, target = h["id"], h["message_type"], h["source"], h["target"]
        if h["version"]["major"] != 1:
            return Outcome("INVALID_PROTOCOL_VERSION", "BUS-006", "a receiver check (VER-003)")
        if expiry is not None and self.now > expiry:
            return Outcome("TTL_EXPIRED", "BUS-006", "expired before acceptance (TTL-006)")
        timeout = self.limits["request_timeout_ns"]
        if mtype == "Request" and "bus.timeout_ns" in msg["metadata"]:
            t = msg["metadata"]["bus.timeout_ns"]
            if type(t) is not int or not 0 <= t <= I63:
                return Outcome("INVALID_OPERATION", "BUS-020", f"bus.timeout_ns {t!r}")
            timeout = t
        answers: Outstanding | None = None
        unmatched = False
        topic: str | None = None
        recipients: list[str]
        how = ("direct", "BUS-009")
        if target in self.endpoints:
            recipients = [target]
            if mtype in ("Response", "Error"):
                o = self.outstanding.get(h["correlation_id"] or "")
                if o is not None and o.requester == target:
                    answers, how = o, ("answer", "BUS-022")
                elif mtype == "Response":
                    recipients, unmatched, how = [], True, ("unmatched response", "BUS-023")
        elif target.startswith("topic:"):
            if mtype in ("Request", "Response"):
                return Outcome("NO_ROUTE", "BUS-012", f"a {mtype} to a topic")
            topic, how = target[6:], ("publish", "BUS-010")
            recipients = list(self.subs.get(topic, []))
        elif target.startswith("bus:"):
            if target != BROADCAST:
                return Outcome("NO_ROUTE", "BUS-001", f"no bus address {target!r}")
            if mtype in ("Request", "Response"):
                return Outcome("NO_ROUTE", "BUS-012", f"a {mtype} broadcast")
            recipients, how = [e for e in self.endpoints if e != source], ("broadcast", "BUS-011")
        else:
            recipients = []
            if mtype == "Response":
                unmatched, how = True, ("unmatched response", "BUS-023")
        requester: str | None = None
        if mtype == "Request":
            if source not in self.endpoints:
                return Outcome("NO_ROUTE", "BUS-019", f"requester {source!r} is not registered")
            requester = source
        names = set(recipients) | ({target} if unmatched else set())
        missing: list[str] = []
        ordered = sorted(enumerate(self.rules), key=lambda ir: (-ir[1]["priority"], ir[0]))
        for _, r in ordered:
            if not r["enabled"]:
                continue
            if not (
                _match(r["message_type"], mtype)
                and _match(r["source"], source)
                and _match(r["target"], target)
                and (r["topic"] is None or (topic is not None and _match(r["topic"], topic)))
            ):
                continue
            dest = r["destination"]
            if dest not in names:
                names.add(dest)
                (recipients if dest in self.endpoints else missing).append(dest)
            if r["final"]:
                break
        if not recipients and topic is None and target != BROADCAST and not unmatched:
            req = "BUS-019" if mtype == "Request" else "BUS-009"
            return Outcome("NO_ROUTE", req, f"no endpoint {target!r} and no rule routes it")
        full: list[str] = []
        cap = self.limits["max_pending"]
        for r_name in recipients:
            need = 0 if answers is not None and r_name == answers.requester else 1
            need += 1 if r_name == requester else 0
            if need and self.load(r_name) + need > cap:
                self.sweep(r_name)
                if self.load(r_name) + need > cap:
                    full.append(r_name)
        if requester is not None and requester not in recipients and self.load(requester) + 1 > cap:
            self.sweep(requester)
            if self.load(requester) + 1 > cap:
                full.append(requester)
        if full:
            return Outcome("BACKPRESSURE", "BUS-035", f"no room at {full} (max_pending {cap})")
        # accepted (BUS-008)
        self.accepted += 1
        self.per_sender[source] = self.per_sender.get(source, 0) + 1
        if topic is not None:
            self.per_topic[topic] = self.per_topic.get(topic, 0) + 1
        if self.limits["history_max"]:
            self.history.append(msg)
            del self.history[: -self.limits["history_max"]]
        if expiry is not None:
            self.expiry[mid] = expiry
        for r_name in recipients:
            ep = self.endpoints[r_name]
            if answers is not None and r_name == answers.requester:
                del self.outstanding[answers.id]
                ep.reserved -= 1
            ep.queue.append(Copy(msg))
        if unmatched:
            self.dead_letter(msg, "UNMATCHED_RESPONSE", 0, target)
        for dest in missing:
            self.dead_letter(msg, "NO_ROUTE", 0, dest)
        if requester is not None:
            self.outstanding[mid] = Outstanding(mid, requester, target, self.now + timeout, h["priority"])
            self.endpoints[requester].reserved += 1
        return Outcome(None, how[1], f"accepted as {how[0]} ({how[1]}) for {recipients}")

    def deliver(self, name: str) -> tuple[Outcome, list[dict[str, Any]], list[str]]:
        """Deliver everything pending for ``name``; return the outcome, the expected received
        records and the ids dead-lettered as expired on the way."""
        self.op += 1
        ep = self.endpoints.get(name)
        if ep is None:
            return Outcome("INVALID_OPERATION", "BUS-038", f"{name!r} is not registered"), [], []
        got: list[dict[str, Any]] = []
        expired: list[str] = []
        cap = self.limits["max_attempts"]
        while ep.queue:
            c = ep.queue.pop(ep.next_index())
            if self.expired(c.message):
                self.dead_letter(c.message, "TTL_EXPIRED", c.attempts, name)
                expired.append(_mid(c.message))
                continue
            if ep.failing > 0:
                ep.failing -= 1
                self.failed += 1
                attempts = c.attempts + 1
                if attempts >= cap:
                    self.dead_letter(c.message, "HANDLER_FAILED", attempts, name)
                else:
                    ep.queue.append(Copy(c.message, attempts))
                continue
            self.delivered += 1
            got.append({"message": c.message, "attempt": c.attempts + 1})
        return Outcome(None, "BUS-027", "delivered"), got, expired

    def stats(self) -> dict[str, Any]:
        by_ep = {n: len(e.queue) for n, e in self.endpoints.items()}
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "delivered": self.delivered,
            "failed": self.failed,
            "dead_lettered": self.dead,
            "dlq_evicted": self.evicted,
            "pending": sum(by_ep.values()),
            "outstanding_requests": len(self.outstanding),
            "per_topic": dict(self.per_topic),
            "per_sender": dict(self.per_sender),
            "pending_by_endpoint": by_ep,
        }


# ---------------------------------------------------------------------------------------- checks

#: The requirement a mismatch of each statistic breaks (BUS-043 says what each one counts).
STAT_REQUIREMENTS: Final[dict[str, str]] = {
    "accepted": "BUS-008",
    "rejected": "BUS-007",
    "delivered": "BUS-031",
    "failed": "BUS-031",
    "dead_lettered": "BUS-039",
    "dlq_evicted": "BUS-040",
    "pending": "BUS-041",
    "outstanding_requests": "BUS-020",
    "per_topic": "BUS-008",
    "per_sender": "BUS-008",
    "pending_by_endpoint": "BUS-041",
}
_ID_PREFIX: Final = "00000000-0000-4000-8000-"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").fullmatch


def same_message(expected: MessageData, actual: Any) -> bool:
    """Equal, except that the id of a message the bus generated is the bus's to choose (a UUID)
    and its error payload needs only code, category and recoverable."""
    if not isinstance(actual, dict):
        return False
    if expected["header"]["source"] != SYSTEM:
        return actual == expected
    ah = actual.get("header")
    if not isinstance(ah, dict) or not isinstance(ah.get("id"), str) or not _UUID(ah["id"]):
        return False
    eh = dict(expected["header"], id=ah["id"])
    ap = actual.get("payload")
    if ah != eh or not isinstance(ap, dict) or actual.get("metadata") != {}:
        return False
    return all(ap.get(k) == v for k, v in expected["payload"].items())


def _key(msg: Any) -> str:
    """A message's identity for diagnostics: its id, or what the bus generated."""
    try:
        h = msg["header"]
        if h["source"] == SYSTEM:
            return f"bus-answer({h['correlation_id']},{msg['payload']['code']})"
        return str(h["id"])
    except (KeyError, TypeError):
        return repr(msg)[:80]


def _arrival(msg: Any) -> int | None:
    """The arrival rank of a message the machine made (its id counts up), else None."""
    try:
        mid = msg["header"]["id"]
    except (KeyError, TypeError):
        return None
    if isinstance(mid, str) and mid.startswith(_ID_PREFIX) and msg["header"]["source"] != SYSTEM:
        return int(mid[len(_ID_PREFIX) :], 16)
    return None


def _brief(msg: Any) -> str:
    try:
        h = msg["header"]
        return f"{_key(msg)}[{h['message_type']} {h['source']}->{h['target']} prio {h['priority']}]"
    except (KeyError, TypeError):
        return repr(msg)[:80]


def check_error(op: str, expected: Outcome, got: ImplError | None) -> None:
    """Compare an operation's outcome with the model's (and the error's category, BUS-046)."""
    got_code = None if got is None else got.code
    if got_code != expected.code:
        fail(
            expected.requirement,
            f"{op}: expected {expected.code or 'success'} ({expected.why}), got {got_code or 'success'}"
            + (f" ({got.message})" if got is not None and got.message else ""),
        )
    if got is not None and got.category is not None:
        want = ERROR_TABLE.get(got.code)
        if want is not None and (got.category, got.recoverable) != want:
            fail("BUS-046", f"{op}: {got.code} reported as ({got.category}, {got.recoverable}), not {want}")


def check_received(
    endpoint: str,
    expected: list[dict[str, Any]],
    actual: list[dict[str, Any]],
    expired: list[str],
    still_pending: int,
    was_pending: Sequence[str] = (),
) -> None:
    """Compare one endpoint's deliveries with the model's and name the requirement they break.

    ``expired``: ids the model dead-lettered as expired in this delivery; ``still_pending``: the
    bus's pending copies for the endpoint afterwards; ``was_pending``: the keys of the copies
    pending when the delivery began."""
    if len(actual) == len(expected) and all(
        isinstance(a, dict)
        and a.get("attempt") == e["attempt"]
        and same_message(e["message"], a.get("message"))
        for e, a in zip(expected, actual, strict=True)
    ):
        return
    exp_keys = [_key(e["message"]) for e in expected]
    act_keys = [_key(a.get("message")) if isinstance(a, dict) else repr(a) for a in actual]
    shown = f"expected {[_brief(e['message']) for e in expected]}, got {act_keys}"
    late = [k for k in act_keys if k in expired]
    if late:
        fail("BUS-029", f"deliver({endpoint}) delivered expired message(s) {late}; {shown}")
    # All the copies a deliver() delivers were pending when it began, and retries never overtake
    # first attempts: the first attempts (of the machine's messages, whose ids count up in arrival
    # order) come in priority, then arrival order.
    firsts = [
        (-_prio(a["message"]), _arrival(a["message"]), _key(a["message"]))
        for a in actual
        if isinstance(a, dict) and a.get("attempt") == 1 and _arrival(a.get("message")) is not None
    ]
    for x, y in itertools.pairwise(firsts):
        if y[:2] < x[:2]:
            fail("BUS-027", f"deliver({endpoint}): {y[2]} was delivered after {x[2]}; {shown}")
    if still_pending and len(act_keys) < len(exp_keys):
        fail(
            "BUS-032",
            f"deliver({endpoint}) stopped with {still_pending} copies pending after a failing attempt;"
            f" {shown}",
        )
    if act_keys == exp_keys:
        got_attempts = [a.get("attempt") for a in actual]
        want_attempts = [e["attempt"] for e in expected]
        if got_attempts != want_attempts:
            if sum(n if isinstance(n, int) else -(10**9) for n in got_attempts) == sum(want_attempts):
                # as many failed attempts, on other copies: they were attempted in another order
                fail("BUS-027", f"deliver({endpoint}): the failures fell on other copies; {shown}")
            fail("BUS-031", f"deliver({endpoint}): attempt numbers differ; {shown}")
        fail("BUS-003", f"deliver({endpoint}): a delivered message differs from the accepted one; {shown}")
    if sorted(act_keys) == sorted(exp_keys):
        i = next(i for i, (x, y) in enumerate(zip(exp_keys, act_keys, strict=True)) if x != y)
        e, a = expected[i], actual[i]
        if _prio(e["message"]) == _prio(a["message"]) and (e["attempt"] > 1 or a.get("attempt", 1) > 1):
            fail("BUS-028", f"deliver({endpoint}): a retried copy is out of place at {i}; {shown}")
        fail("BUS-027", f"deliver({endpoint}): order is not priority-then-arrival from position {i}; {shown}")
    if len(act_keys) == len(exp_keys) and set(act_keys) <= set(was_pending):
        # as many successes, among the copies that were pending: the failures fell elsewhere
        fail("BUS-027", f"deliver({endpoint}): the copies were attempted in another order; {shown}")
    fail("BUS-041", f"deliver({endpoint}): the copies delivered are not the model's; {shown}")


def _same_entry(e: dict[str, Any], a: Any) -> bool:
    return (
        isinstance(a, dict)
        and same_message(e["message"], a.get("message"))
        and all(a.get(k) == e[k] for k in ("reason", "attempts", "recipient", "time"))
    )


#: The requirement that gives a dead letter its reason.
REASON_REQUIREMENTS: Final[dict[str, str]] = {
    "TTL_EXPIRED": "BUS-029",
    "HANDLER_FAILED": "BUS-031",
    "ENDPOINT_CLOSED": "BUS-037",
    "NO_ROUTE": "BUS-017",
    "UNMATCHED_RESPONSE": "BUS-023",
}


def _wrong_entry(ever: list[dict[str, Any]], a: Any, shown: str) -> None:
    """An entry the model never made: name the requirement behind the model's entry for the same
    copy (same message and recipient), if there is one."""
    twin = next(
        (
            e
            for e in ever
            if isinstance(a, dict)
            and same_message(e["message"], a.get("message"))
            and e["recipient"] == a.get("recipient")
        ),
        None,
    )
    if twin is not None and twin["reason"] != a.get("reason"):
        fail(
            REASON_REQUIREMENTS.get(twin["reason"], "BUS-039"),
            f"a copy dead-lettered as {a.get('reason')}, the model says {twin['reason']}; {shown}",
        )
    if twin is not None and twin["attempts"] != a.get("attempts"):
        fail("BUS-031", f"a dead letter with {a.get('attempts')} attempts, not {twin['attempts']}; {shown}")
    fail(
        "BUS-039", f"a dead letter the model never made (message, reason, attempts, recipient, time); {shown}"
    )


def check_dead_letters(model: BusModel, actual: list[dict[str, Any]], dead_lettered: Any = None) -> None:
    """Compare the dead-letter queue with the model's; on a difference, tell a queue that keeps
    the wrong entries (BUS-040) from one that dead-letters in another order (BUS-027: leaving and
    sweeping dead-letter in delivery order) or dead-letters other copies (BUS-039).
    ``dead_lettered`` is the bus's count of entries ever made, when known."""
    exp = model.dlq
    if len(exp) == len(actual) and all(_same_entry(e, a) for e, a in zip(exp, actual, strict=True)):
        return
    fmt = [f"{_key(e['message'])}:{e['reason']}@{e['recipient']}#{e['attempts']}" for e in exp]
    got = [
        f"{_key(a.get('message'))}:{a.get('reason')}@{a.get('recipient')}#{a.get('attempts')}"
        if isinstance(a, dict)
        else repr(a)
        for a in actual
    ]
    shown = f"expected {fmt}, got {got}"
    cap = model.limits["dlq_max"]
    if len(actual) != len(exp):
        if len(exp) == cap or len(actual) > cap:
            fail("BUS-040", f"the dead-letter queue holds {len(actual)} entries (dlq_max {cap}); {shown}")
        fail("BUS-039", f"dead letters differ from the model; {shown}")
    ever = model.dead_ever
    found: list[int] = []  # index into ever of each actual entry
    for a in actual:
        i = next((i for i, e in enumerate(ever) if _same_entry(e, a)), None)
        if i is None:
            _wrong_entry(ever, a, shown)
        else:
            found.append(i)
    ops = model.dead_ops
    for x, y in itertools.pairwise(found):
        if ops[y] < ops[x]:
            fail("BUS-039", f"dead letters are not kept oldest first; {shown}")
        if ops[y] == ops[x] and y < x:
            # one operation dead-letters in delivery order (BUS-029, BUS-035, BUS-037)
            fail("BUS-027", f"dead letters of one operation are not in delivery order; {shown}")
    if dead_lettered is not None and dead_lettered != model.dead:
        fail("BUS-039", f"{dead_lettered} copies were dead-lettered, not {model.dead}; {shown}")
    # The right order, so the wrong entries: an older one kept, a newer one dropped. When all the
    # differing entries come from one operation, the same picture is also a bus that dead-letters
    # that operation's copies in another order and then evicts correctly: name both.
    exp_ops = [ops[ever.index(e)] for e in exp]
    same_ops = sorted(ops[i] for i in found) == sorted(exp_ops)
    fail(
        "BUS-040",
        f"a full dead-letter queue must evict its oldest entries; {shown}",
        ("BUS-027",) if same_ops else (),
    )


def check_stats(model: BusModel, actual: Mapping[str, Any]) -> None:
    exp = model.stats()
    for key, want in exp.items():
        if actual.get(key) != want:
            fail(STAT_REQUIREMENTS[key], f"stats[{key!r}] is {actual.get(key)!r}, expected {want!r}")


# ---------------------------------------------------------------------------------------- machine

ENDPOINTS: Final = ("a", "b", "c", "d")
TOPICS: Final = ("t1", "t2")
TARGETS: Final = (*ENDPOINTS, *ENDPOINTS, "topic:t1", "topic:t2", BROADCAST, "bus:nowhere")
PRIORITIES: Final = (0, 0, 100, -100, 1000)
SOURCES: Final = (*ENDPOINTS, "x")


def _uuid(n: int) -> str:
    return f"{_ID_PREFIX}{n:012x}"


ttls = st.sampled_from([None, None, None, (0, 0), (1, 0), (2, 500_000_000)])
ages = st.sampled_from([0, 0, NS // 2, 2 * NS])
versions = st.sampled_from([(1, 0)] * 8 + [(1, 7), (2, 0)])


class BusStateMachine(RuleBasedStateMachine):
    """Drives a :class:`BusUnderTest` and a :class:`BusModel` in lock step (see the module
    docstring); :func:`make_state_machine` binds it to a bus factory."""

    bus_factory: ClassVar[Callable[[], BusUnderTest]]

    def __init__(self) -> None:
        super().__init__()
        self.bus = type(self).bus_factory()
        self.model: BusModel | None = None
        self.counter = 0
        self.requests: list[tuple[str, str]] = []  # (request id, requester) ever sent

    # -- helpers

    def _m(self) -> BusModel:
        assert self.model is not None
        return self.model

    def _call(self, op: str, expected: Outcome, fn: Callable[[], Any]) -> Any:
        try:
            result = fn()
        except ImplError as e:
            check_error(op, expected, e)
            return None
        check_error(op, expected, None)
        return result

    def _message(
        self,
        mtype: str,
        source: str,
        target: str,
        *,
        priority: int = 0,
        ttl: tuple[int, int] | None = None,
        age: int = 0,
        version: tuple[int, int] = (1, 0),
        correlation_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> tuple[MessageData, int | None]:
        self.counter += 1
        ts = self._m().now - age
        msg: MessageData = {
            "header": {
                "id": _uuid(self.counter),
                "correlation_id": correlation_id,
                "message_type": mtype,
                "source": source,
                "target": target,
                "timestamp": format_rfc3339(ts),
                "ttl": None if ttl is None else {"secs": ttl[0], "nanos": ttl[1]},
                "priority": priority,
                "version": {"major": version[0], "minor": version[1]},
            },
            "payload": {"n": self.counter},
            "metadata": metadata or {},
        }
        expiry = None if ttl is None else ts + ttl[0] * NS + ttl[1]
        return msg, expiry

    def _send(self, msg: MessageData, expiry: int | None) -> None:
        m = self._m()
        expected = m.send(msg, expiry)
        self._call(f"send({_brief(msg)})", expected, lambda: self.bus.send(msg))

    # -- rules

    @initialize(
        max_pending=st.sampled_from([1, 2, 3, 5, 100]),
        dlq_max=st.sampled_from([0, 1, 2, 2, 3, 8]),
        history_max=st.sampled_from([0, 1, 3, 8]),
        max_attempts=st.sampled_from([1, 2, 3]),
        request_timeout_ns=st.sampled_from([0, NS, 3 * NS]),
        initial=st.lists(st.sampled_from(ENDPOINTS), min_size=2, max_size=4, unique=True),
        subscriptions=st.lists(st.tuples(st.sampled_from(ENDPOINTS), st.sampled_from(TOPICS)), max_size=4),
    )
    def configure(
        self,
        max_pending: int,
        dlq_max: int,
        history_max: int,
        max_attempts: int,
        request_timeout_ns: int,
        initial: list[str],
        subscriptions: list[tuple[str, str]],
    ) -> None:
        limits = {
            "max_pending": max_pending,
            "dlq_max": dlq_max,
            "history_max": history_max,
            "max_attempts": max_attempts,
            "request_timeout_ns": request_timeout_ns,
        }
        self.bus.configure(limits)
        self.bus.set_clock(T0)
        self.model = BusModel(limits, T0)
        for name in initial:
            self.register(name)
        for name, topic in subscriptions:
            self.subscribe(name, topic)

    @rule(name=st.sampled_from([*ENDPOINTS, *ENDPOINTS, "topic:a", "bus:a"]))
    def register(self, name: str) -> None:
        self._call(f"register({name})", self._m().register(name), lambda: self.bus.register(name))

    @rule(name=st.sampled_from(ENDPOINTS))
    def unregister(self, name: str) -> None:
        self._call(f"unregister({name})", self._m().unregister(name), lambda: self.bus.unregister(name))

    @rule(name=st.sampled_from(ENDPOINTS), topic=st.sampled_from(TOPICS))
    def subscribe(self, name: str, topic: str) -> None:
        out = self._m().subscribe(name, topic)
        self._call(f"subscribe({name}, {topic})", out, lambda: self.bus.subscribe(name, topic))

    @rule(name=st.sampled_from(ENDPOINTS), topic=st.sampled_from(TOPICS))
    def unsubscribe(self, name: str, topic: str) -> None:
        out = self._m().unsubscribe(name, topic)
        self._call(f"unsubscribe({name}, {topic})", out, lambda: self.bus.unsubscribe(name, topic))

    @precondition(lambda self: self.model is not None and bool(self.model.endpoints))
    @rule(data=st.data(), failures=st.integers(0, 3))
    def set_failing(self, data: st.DataObject, failures: int) -> None:
        m = self._m()
        name = data.draw(st.sampled_from(sorted(m.endpoints)), label="endpoint")
        m.endpoints[name].failing = failures
        self.bus.set_failing(name, failures)

    @rule(
        source=st.sampled_from(SOURCES),
        to=st.sampled_from(TARGETS),
        mtype=st.sampled_from(["Event", "Event", "Heartbeat", "Error"]),
        priority=st.sampled_from(PRIORITIES),
        ttl=ttls,
        age=ages,
        version=versions,
    )
    def send(
        self,
        source: str,
        to: str,
        mtype: str,
        priority: int,
        ttl: tuple[int, int] | None,
        age: int,
        version: tuple[int, int],
    ) -> None:
        msg, expiry = self._message(mtype, source, to, priority=priority, ttl=ttl, age=age, version=version)
        self._send(msg, expiry)

    @precondition(lambda self: self.model is not None and bool(self.model.endpoints))
    @rule(data=st.data(), priority=st.sampled_from(PRIORITIES), ttl=ttls)
    def send_direct(self, data: st.DataObject, priority: int, ttl: tuple[int, int] | None) -> None:
        """An Event between registered endpoints (the traffic most rules are about)."""
        names = sorted(self._m().endpoints)
        source = data.draw(st.sampled_from(names), label="source")
        to = data.draw(st.sampled_from(names), label="to")
        msg, expiry = self._message("Event", source, to, priority=priority, ttl=ttl)
        self._send(msg, expiry)

    @precondition(lambda self: self.model is not None and bool(self.model.endpoints))
    @rule(data=st.data(), topic=st.sampled_from(TOPICS), priority=st.sampled_from(PRIORITIES), ttl=ttls)
    def publish(self, data: st.DataObject, topic: str, priority: int, ttl: tuple[int, int] | None) -> None:
        source = data.draw(st.sampled_from(sorted(self._m().endpoints)), label="source")
        msg, expiry = self._message("Event", source, f"topic:{topic}", priority=priority, ttl=ttl)
        self._send(msg, expiry)

    @precondition(lambda self: self.model is not None and bool(self.model.endpoints))
    @rule(data=st.data(), priority=st.sampled_from(PRIORITIES), timeout=st.sampled_from([None, 0, 1, NS]))
    def request_direct(self, data: st.DataObject, priority: int, timeout: int | None) -> None:
        """A Request between registered endpoints (most of them are accepted)."""
        names = sorted(self._m().endpoints)
        source = data.draw(st.sampled_from(names), label="source")
        to = data.draw(st.sampled_from(names), label="to")
        meta = {} if timeout is None else {"bus.timeout_ns": timeout}
        msg, expiry = self._message("Request", source, to, priority=priority, metadata=meta)
        self.requests.append((_mid(msg), source))
        self._send(msg, expiry)

    @rule(
        source=st.sampled_from(SOURCES),
        to=st.sampled_from([*ENDPOINTS, *ENDPOINTS, "topic:t1", BROADCAST]),
        priority=st.sampled_from(PRIORITIES),
        ttl=ttls,
        timeout=st.sampled_from([None, None, 0, NS, 2 * NS, -1, "soon"]),
    )
    def request(
        self, source: str, to: str, priority: int, ttl: tuple[int, int] | None, timeout: int | str | None
    ) -> None:
        meta = {} if timeout is None else {"bus.timeout_ns": timeout}
        msg, expiry = self._message("Request", source, to, priority=priority, ttl=ttl, metadata=meta)
        self.requests.append((_mid(msg), source))
        self._send(msg, expiry)

    @precondition(lambda self: bool(self.requests))
    @rule(
        data=st.data(),
        mtype=st.sampled_from(["Response", "Response", "Error"]),
        source=st.sampled_from(ENDPOINTS),
        to_requester=st.booleans(),
        priority=st.sampled_from(PRIORITIES),
    )
    def answer(self, data: st.DataObject, mtype: str, source: str, to_requester: bool, priority: int) -> None:
        m = self._m()
        open_ids = [(o.id, o.requester) for o in m.outstanding.values()]
        pool = open_ids * 3 + self.requests
        rid, requester = data.draw(st.sampled_from(pool), label="request")
        target = requester if to_requester else data.draw(st.sampled_from(TARGETS[:5]), label="target")
        msg, expiry = self._message(mtype, source, target, priority=priority, correlation_id=rid)
        self._send(msg, expiry)

    @rule(step=st.sampled_from([0, 1, NS // 2, NS, NS, 2 * NS, 5 * NS]))
    def advance(self, step: int) -> None:
        m = self._m()
        before = len(m.outstanding)
        timed_out = m.set_clock(m.now + step)
        self.bus.set_clock(m.now)
        got = self.bus.stats().get("outstanding_requests")
        if got != len(m.outstanding):
            fail(
                "BUS-024",
                f"the clock moved by {step} ns: {len(timed_out)} of {before} outstanding requests "
                f"should have timed out ({timed_out}), {got} are outstanding, not {len(m.outstanding)}",
            )

    @precondition(lambda self: self.model is not None and bool(self.model.endpoints))
    @rule()
    def deliver_busiest(self) -> None:
        """Deliver to the registered endpoint with the most pending copies (ties: the first)."""
        m = self._m()
        self.deliver(max(m.endpoints, key=lambda n: len(m.endpoints[n].queue)))

    @rule(name=st.sampled_from(ENDPOINTS))
    def deliver(self, name: str) -> None:
        m = self._m()
        ep = m.endpoints.get(name)
        was_pending = [_key(c.message) for c in ep.queue] if ep is not None else []
        out, expected, expired = m.deliver(name)
        self._call(f"deliver({name})", out, lambda: self.bus.deliver(name))
        if out.code is not None:
            return
        actual = self.bus.received(name)
        stats = self.bus.stats()
        pending = stats.get("pending_by_endpoint", {}).get(name, 0)
        stale = {i for i, last in m.expiry.items() if m.now > last}  # expired, wherever they are
        check_received(name, expected, actual, [*expired, *stale], pending, was_pending)
        if pending:
            fail(
                "BUS-032", f"deliver({name}) stopped with {pending} copies still pending (a failing attempt?)"
            )
        tried = (stats.get("failed"), stats.get("delivered"))
        if expired and tried != (m.failed, m.delivered):
            fail(
                "BUS-029",
                f"deliver({name}): (failed, delivered) attempts are {tried}, not {(m.failed, m.delivered)}:"
                f" were the expired copies {expired} attempted?",
            )

    @rule(
        rid=st.sampled_from(["r1", "r2", "r3"]),
        destination=st.sampled_from(ENDPOINTS),
        priority=st.sampled_from([0, 1, 2]),
        enabled=st.booleans(),
        final=st.booleans(),
        message_type=st.sampled_from([None, None, "Event", "Request", "Response"]),
        source=st.sampled_from([None, None, "a", "b", "*"]),
        to=st.sampled_from([None, None, "a", "topic:*", "x"]),
        topic=st.sampled_from([None, None, None, "t1", "t*"]),
    )
    def add_rule(
        self,
        rid: str,
        destination: str,
        priority: int,
        enabled: bool,
        final: bool,
        message_type: str | None,
        source: str | None,
        to: str | None,
        topic: str | None,
    ) -> None:
        r = {
            "id": rid,
            "destination": destination,
            "priority": priority,
            "enabled": enabled,
            "final": final,
            "message_type": message_type,
            "source": source,
            "target": to,
            "topic": topic,
        }
        self._call(f"add_rule({r})", self._m().add_rule(r), lambda: self.bus.add_rule(r))

    @rule(rid=st.sampled_from(["r1", "r2", "r3"]))
    def remove_rule(self, rid: str) -> None:
        self._call(f"remove_rule({rid})", self._m().remove_rule(rid), lambda: self.bus.remove_rule(rid))

    @rule(rid=st.sampled_from(["r1", "r2", "r3"]), enabled=st.booleans())
    def enable_rule(self, rid: str, enabled: bool) -> None:
        out = self._m().enable_rule(rid, enabled)
        self._call(f"enable_rule({rid}, {enabled})", out, lambda: self.bus.enable_rule(rid, enabled))

    # -- invariants

    @invariant()
    def agrees_with_the_model(self) -> None:
        m = self.model
        if m is None:
            return
        stats = self.bus.stats()
        for name, n in (stats.get("pending_by_endpoint") or {}).items():
            ep = m.endpoints.get(name)
            if ep is not None and n + ep.reserved > m.limits["max_pending"]:
                fail("BUS-034", f"endpoint {name} holds {n} copies + {ep.reserved} reserved > max_pending")
        check_dead_letters(m, self.bus.dead_letters(), stats.get("dead_lettered"))
        check_stats(m, stats)
        hist = self.bus.history()
        if [_key(x) for x in hist] != [_key(x) for x in m.history] or hist != m.history:
            fail("BUS-042", f"history is {[_key(x) for x in hist]}, expected {[_key(x) for x in m.history]}")

    def teardown(self) -> None:
        self.bus.close()


# ---------------------------------------------------------------------------------------- running

#: Hypothesis settings of the machine by profile; "ci" is 200 sequences.
PROFILES: Final[dict[str, int]] = {"quick": 25, "default": 60, "ci": 200, "thorough": 2000}


def settings_for(profile: str = "default", **overrides: Any) -> hypothesis.settings:
    """Settings for a run: ``max_examples`` from the profile, sequences of up to 40 steps, no
    deadline, no example database (a run is reproducible with ``derandomize=True``), shrinking
    but no explain phase; ``overrides`` are any other ``hypothesis.settings`` arguments."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    base: dict[str, Any] = {
        "max_examples": PROFILES[profile],
        "stateful_step_count": 40,
        "deadline": None,
        "database": None,
        "print_blob": False,
        "report_multiple_bugs": False,  # one BusViolation, not a group of them
        # the explain phase replays a shrunk stateful example hundreds of times for a few notes
        "phases": [p for p in hypothesis.Phase if p is not hypothesis.Phase.explain],
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
    }
    base.update(overrides)
    return hypothesis.settings(**base)


def make_state_machine(bus_factory: Callable[[], BusUnderTest]) -> type[BusStateMachine]:
    """A :class:`BusStateMachine` subclass that tests the buses ``bus_factory`` makes (one per
    sequence)."""
    name = getattr(bus_factory, "__name__", "Bus")
    return type(f"BusStateMachine_{name}", (BusStateMachine,), {"bus_factory": staticmethod(bus_factory)})


def run_state_machine(
    bus_factory: Callable[[], BusUnderTest],
    *,
    settings: hypothesis.settings | None = None,
    profile: str = "default",
) -> None:
    """Run the state machine against ``bus_factory()``; raise :class:`BusViolation` (after
    shrinking) when the bus breaks a requirement."""
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(make_state_machine(bus_factory), settings=settings or settings_for(profile))


def make_test_case(
    bus_factory: Callable[[], BusUnderTest],
    *,
    settings: hypothesis.settings | None = None,
    profile: str = "default",
) -> type[unittest.TestCase]:
    """A ``unittest.TestCase`` class running the state machine (pytest collects it when it is
    bound to a ``Test*`` name in a test module)."""
    machine = make_state_machine(bus_factory)
    case: type[unittest.TestCase] = machine.TestCase
    case.settings = settings or settings_for(profile)  # type: ignore[attr-defined]
    return case


# ---------------------------------------------------------------------------------------- reference


class ReferenceBus:
    """The reference bus (``symphony_ipc.bus.BusCore`` on a manual clock) as a
    :class:`BusUnderTest`; :mod:`.bus_mutants` subclass it with seeded faults."""

    core_class: ClassVar[type[BusCore]] = BusCore

    def __init__(self) -> None:
        self.clock = ref.ManualClock(T0)
        self.core = self.core_class(BusConfig(backpressure_timeout_ns=0), clock=self.clock)
        self._received: dict[str, list[tuple[Any, int]]] = {}
        self._failing: dict[str, int] = {}

    def _do(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except ref.ProtocolError as e:
            raise ImplError(e.code.value, e.message, category=e.category, recoverable=e.recoverable) from None

    def configure(self, limits: Mapping[str, int]) -> None:
        config = self._do(lambda: BusConfig(backpressure_timeout_ns=0, **dict(limits)))
        self.core.configure(config)

    def set_clock(self, now_ns: int) -> None:
        self.clock.set(now_ns)
        self.core.poll()

    def register(self, endpoint: str) -> None:
        def handler(msg: Any, attempt: int) -> None:
            n = self._failing.get(endpoint, 0)
            if n:
                self._failing[endpoint] = n - 1
                raise RuntimeError("seeded handler failure")
            self._received[endpoint].append((msg, attempt))

        self._do(lambda: self.core.register(endpoint, handler))
        self._received[endpoint] = []
        self._failing[endpoint] = 0

    def unregister(self, endpoint: str) -> None:
        self._do(lambda: self.core.unregister(endpoint))

    def set_failing(self, endpoint: str, failures: int) -> None:
        self._failing[endpoint] = failures

    def subscribe(self, endpoint: str, topic: str) -> None:
        self._do(lambda: self.core.subscribe(endpoint, topic))

    def unsubscribe(self, endpoint: str, topic: str) -> None:
        self._do(lambda: self.core.unsubscribe(endpoint, topic))

    def add_rule(self, rule: Mapping[str, Any]) -> None:
        self._do(lambda: self.core.add_rule(Rule.from_dict(dict(rule))))

    def remove_rule(self, rule_id: str) -> None:
        self._do(lambda: self.core.remove_rule(rule_id))

    def enable_rule(self, rule_id: str, enabled: bool) -> None:
        self._do(lambda: self.core.enable_rule(rule_id, enabled))

    def send(self, message: MessageData) -> None:
        self._do(lambda: self.core.submit(message_from_data(message)))

    def deliver(self, endpoint: str) -> None:
        self._do(lambda: self.core.deliver(endpoint))

    def received(self, endpoint: str) -> list[dict[str, Any]]:
        got = self._received.get(endpoint, [])
        self._received[endpoint] = []
        return [{"message": message_to_data(m), "attempt": a} for m, a in got]

    def dead_letters(self) -> list[dict[str, Any]]:
        return [dead_letter_to_data(e) for e in self.core.dead_letters()]

    def stats(self) -> dict[str, Any]:
        return self.core.stats().to_dict()

    def history(self) -> list[MessageData]:
        return [message_to_data(m) for m in self.core.history()]

    def close(self) -> None:
        pass


__all__ = [
    "ERROR_TABLE",
    "PROFILES",
    "ImplError",
    "BusModel",
    "BusStateMachine",
    "BusUnderTest",
    "BusViolation",
    "Outcome",
    "ReferenceBus",
    "check_dead_letters",
    "check_received",
    "check_stats",
    "make_state_machine",
    "make_test_case",
    "run_state_machine",
    "settings_for",
    "violation",
]
