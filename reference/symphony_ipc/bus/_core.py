"""The sans-I/O core of the message bus (spec/bus.md): routing, queues, time, dead letters, stats.

No asyncio and no threads: operations go in (:meth:`BusCore.submit`, :meth:`BusCore.take`,
:meth:`BusCore.settle`, :meth:`BusCore.poll`, ...) and every effect is in the core's state or in
the callbacks it is given (a handler, a wake-up, a request waiter). The asyncio shell
(:mod:`._asyncio`) and the later bus node (remote endpoints over the transports) are thin layers
over it; the model-based tests drive it synchronously, with a manual clock.

Hot path (submit -> enqueue -> deliver): one dictionary lookup routes a message; a copy is a tuple
``(message, failed_attempts)`` shared by all recipients and appended to the recipient's FIFO of its
priority level (a deque per level, and a sorted list of the non-empty levels: O(1) for the usual
few levels, no heap); the clock is read only for messages with a ttl. The core is not
thread-safe: one event loop (or one thread) owns it.
"""

from __future__ import annotations

import heapq
import re
from bisect import insort
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Final, NamedTuple

import msgspec

from .._errors import (
    ERROR_TABLE,
    Backpressure,
    ErrorCode,
    InvalidEndpointId,
    InvalidOperation,
    InvalidProtocolVersion,
    MessageTooLarge,
    NoRoute,
    ProtocolError,
    SerializationError,
    TtlExpired,
)
from .._ids import new_id
from .._model import CURRENT_VERSION, Header, Message, MessageType, check_endpoint
from .._time import NS, SYSTEM_CLOCK, Clock, Timestamp, format_rfc3339

MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024  #: BUS-005 = ENV-013
SYSTEM_SOURCE: Final = "bus:system"  #: the source of the bus's own answers (BUS-024, BUS-037)
BROADCAST: Final = "bus:broadcast"
TOPIC_PREFIX: Final = "topic:"
TIMEOUT_KEY: Final = "bus.timeout_ns"
_I63: Final = 2**63 - 1
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._:/@-]{1,122}").fullmatch
_HEADER_MAX: Final = 1024  # the JSON of any header is shorter than this (ids, endpoints <= 128, ...)

_REQUEST = MessageType.REQUEST
_RESPONSE = MessageType.RESPONSE
_ERROR = MessageType.ERROR
_EVENT = MessageType.EVENT
_HEARTBEAT = MessageType.HEARTBEAT
_FAST_SIZE: Final = MAX_MESSAGE_SIZE - 2 * _HEADER_MAX  # payload + metadata below this: small enough

Handler = Callable[[Message, int], object]
"""A synchronous handler: called with the message and the attempt number (from 1); raising fails
the attempt (BUS-030). The return value is ignored."""

Waiter = Callable[[Message | None], None]
"""Receives the answer of a request (``None`` when the request is cancelled, BUS-037)."""


@dataclass(frozen=True, slots=True)
class BusConfig:
    """The limits of spec/bus.md section 0 with their defaults (seed 002's, BUS-044)."""

    max_pending: int = 10_000
    backpressure_timeout_ns: int = 30 * NS
    request_timeout_ns: int = 30 * NS
    max_attempts: int = 3
    dlq_max: int = 1000
    history_max: int = 10_000

    def __post_init__(self) -> None:
        for name in ("max_pending", "max_attempts"):
            _check_int(name, getattr(self, name), 1)
        for name in ("dlq_max", "history_max", "backpressure_timeout_ns", "request_timeout_ns"):
            _check_int(name, getattr(self, name), 0)


def _check_int(name: str, value: object, low: int) -> None:
    if type(value) is not int or not low <= value <= _I63:
        raise InvalidOperation(f"{name} must be an integer >= {low}, got {value!r}", field=name)


@dataclass(frozen=True, slots=True)
class Rule:
    """A routing rule (BUS-015..BUS-018): matching messages get ``destination`` as a recipient.

    A filter is ``None`` (anything), an exact string, or a prefix ending in ``*``.
    """

    id: str
    destination: str
    priority: int = 0
    enabled: bool = True
    final: bool = False
    message_type: str | None = None
    source: str | None = None
    target: str | None = None
    topic: str | None = None

    def matches(self, header: Header, topic: str | None) -> bool:
        return (
            _match(self.message_type, header.message_type.value)
            and _match(self.source, header.source)
            and _match(self.target, header.target)
            and (self.topic is None or (topic is not None and _match(self.topic, topic)))
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "destination": self.destination,
            "priority": self.priority,
            "enabled": self.enabled,
            "final": self.final,
            "message_type": self.message_type,
            "source": self.source,
            "target": self.target,
            "topic": self.topic,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rule:
        """A rule from its JSON form; a malformed one raises ``INVALID_OPERATION``."""
        if not isinstance(data, dict):
            raise InvalidOperation(f"a rule is an object, got {type(data).__name__}")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise InvalidOperation(f"unknown rule members {sorted(unknown)}")
        rid, dest = data.get("id"), data.get("destination")
        if not isinstance(rid, str) or not rid:
            raise InvalidOperation(f"rule id must be a non-empty string, got {rid!r}")
        if not isinstance(dest, str):
            raise InvalidOperation(f"rule destination must be a string, got {dest!r}")
        prio = data.get("priority", 0)
        if type(prio) is not int:
            raise InvalidOperation(f"rule priority must be an integer, got {prio!r}")
        enabled, final = data.get("enabled", True), data.get("final", False)
        if type(enabled) is not bool or type(final) is not bool:
            raise InvalidOperation("rule enabled and final must be booleans")
        filters: dict[str, str | None] = {}
        for name in ("message_type", "source", "target", "topic"):
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                raise InvalidOperation(f"rule filter {name} must be a string or null, got {value!r}")
            filters[name] = value
        return cls(rid, dest, prio, enabled, final, **filters)


def _match(pattern: str | None, value: str) -> bool:
    if pattern is None:
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return pattern == value


class DeadLetter(NamedTuple):
    """One dead-letter entry (BUS-039)."""

    message: Message
    reason: ErrorCode
    attempts: int
    recipient: str
    time_ns: int


class Delivery(NamedTuple):
    """A copy handed to a pull-mode consumer; settle it with :meth:`BusCore.settle`."""

    message: Message
    attempt: int


@dataclass(slots=True)
class BusStats:
    """BUS-043."""

    accepted: int
    rejected: int
    delivered: int
    failed: int
    dead_lettered: int
    dlq_evicted: int
    pending: int
    outstanding_requests: int
    per_topic: dict[str, int] = field(default_factory=dict)
    per_sender: dict[str, int] = field(default_factory=dict)
    pending_by_endpoint: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "delivered": self.delivered,
            "failed": self.failed,
            "dead_lettered": self.dead_lettered,
            "dlq_evicted": self.dlq_evicted,
            "pending": self.pending,
            "outstanding_requests": self.outstanding_requests,
            "per_topic": dict(self.per_topic),
            "per_sender": dict(self.per_sender),
            "pending_by_endpoint": dict(self.pending_by_endpoint),
        }


_Entry = tuple[Message, int]  # (message, failed attempts)


class _Endpoint:
    __slots__ = (
        "closed",
        "current",
        "delivering",
        "flying",
        "handler",
        "id",
        "inflight",
        "keys",
        "levels",
        "queued",
        "reserved",
        "topics",
        "wake",
    )

    def __init__(self, eid: str, handler: Handler | None) -> None:
        self.id = eid
        self.handler = handler
        self.levels: dict[int, deque[_Entry]] = {}  # -priority -> FIFO (BUS-027)
        self.keys: list[int] = []  # the -priorities of the non-empty levels, ascending
        self.queued = 0
        self.inflight: dict[str, _Entry] = {}  # pull mode: message id -> copy
        self.flying = 0  # copies in flight: pulled, or in a handler call
        self.current: _Entry | None = None  # the copy in a handler call (deliver)
        self.reserved = 0  # answer slots of outstanding requests (BUS-021)
        self.topics: set[str] = set()  # subscribed targets ("topic:NAME")
        self.wake: Callable[[], None] | None = None
        self.delivering = False
        self.closed = False

    def load(self) -> int:
        return self.queued + self.flying + self.reserved

    def push(self, entry: _Entry) -> None:
        key = -entry[0].header.priority
        level = self.levels.get(key)
        if level is None:
            level = self.levels[key] = deque()
        if not level:
            insort(self.keys, key)
        level.append(entry)
        self.queued += 1

    def pop(self) -> _Entry:
        """The next copy in delivery order; the queue must not be empty."""
        key = self.keys[0]
        level = self.levels[key]
        entry = level.popleft()
        if not level:
            del self.keys[0]
        self.queued -= 1
        return entry

    def ordered(self) -> list[_Entry]:
        """The queued copies in delivery order."""
        return [e for key in self.keys for e in self.levels[key]]

    def clear(self) -> None:
        self.levels.clear()
        self.keys.clear()
        self.queued = 0


class TimerHandle:
    """A callback due at an instant of the bus's clock; fired by :meth:`BusCore.poll`."""

    __slots__ = ("callback", "cancelled", "due_ns")

    def __init__(self, due_ns: int, callback: Callable[[], None]) -> None:
        self.due_ns = due_ns
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


def _no_callback() -> None:
    pass


class _Outstanding(TimerHandle):
    """An outstanding request; it is also its own timeout timer (one object per request, not a
    handle, a closure and a record: the bus node holds thousands of them)."""

    __slots__ = ("deadline", "request", "requester", "target", "waiter")

    def __init__(self, request: Message, requester: _Endpoint, deadline: int, waiter: Waiter | None) -> None:
        self.due_ns = deadline + 1
        self.callback = _no_callback  # poll() calls BusCore._time_out instead
        self.cancelled = False
        self.request = request
        self.requester = requester
        self.target = request.header.target
        self.deadline = deadline
        self.waiter = waiter


_json = msgspec.json.Encoder()


def _json_size(value: object) -> int:
    try:
        return len(_json.encode(value))
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as e:
        raise SerializationError(f"the message cannot be encoded as JSON: {e}") from None


def _fits(value: object) -> bool:
    """True when ``value`` certainly encodes below the fast-path bound (False: let the full
    path decide, which also reports values that cannot be encoded)."""
    try:
        return len(_json.encode(value)) < _FAST_SIZE // 2
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError):
        return False


def check_size(msg: Message, limit: int = MAX_MESSAGE_SIZE) -> None:
    """BUS-005: raise ``MESSAGE_TOO_LARGE`` when the message's JSON encoding exceeds ``limit``.

    A cheap upper bound settles almost every message; only one that may be near the limit is
    encoded in full (the reference's canonical encoder, so the size is exact).
    """
    p = msg.payload
    tp = type(p)
    if p is None or tp is int or tp is bool or tp is float:
        bound = 32
    elif tp is str:
        bound = 6 * len(p) + 2  # every character escaped as \uXXXX
    else:
        bound = _json_size(p)
    m = msg.metadata
    bound += _json_size(m) if m else 2
    if bound + _HEADER_MAX <= limit:
        return
    from .._codec import _json_encoder  # the canonical encoder (COD-001)

    try:
        size = len(_json_encoder.encode(msg))
    except ProtocolError:
        raise
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as e:
        raise SerializationError(f"the message cannot be encoded as JSON: {e}") from None
    if size > limit:
        raise MessageTooLarge(f"message is {size} bytes, over {limit}", size=size)


def error_payload(code: ErrorCode, message: str, **details: Any) -> dict[str, Any]:
    """The error wire form (spec/message.schema.json#/$defs/error) carried by the bus's answers."""
    category, recoverable = ERROR_TABLE[code]
    out: dict[str, Any] = {
        "code": code.value,
        "category": category,
        "recoverable": recoverable,
        "message": message,
    }
    if details:
        out["details"] = details
    return out


class BusCore:
    """The message bus of spec/bus.md without I/O. See the module docstring."""

    _endpoint_type: type[_Endpoint] = _Endpoint  # the seeded-fault buses swap the queue discipline

    def __init__(self, config: BusConfig | None = None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config or BusConfig()
        self._max_pending = self.config.max_pending
        self.clock = clock
        self._endpoints: dict[str, _Endpoint] = {}
        self._subs: dict[str, dict[str, _Endpoint]] = {}  # "topic:NAME" -> subscribers in order
        self._rules: dict[str, Rule] = {}
        self._active: tuple[Rule, ...] = ()  # enabled rules in evaluation order (BUS-016)
        self._outstanding: dict[str, _Outstanding] = {}
        self._timers: list[tuple[int, int, TimerHandle]] = []
        self._timer_seq = 0
        self._timers_dropped = 0  # cancelled by _drop_timer and still in the heap
        self._dlq: deque[DeadLetter] = deque(maxlen=self.config.dlq_max)
        self._history: deque[Message] = deque(maxlen=self.config.history_max)
        self._accepted = 0
        self._rejected = 0
        self._delivered = 0
        self._failed = 0
        self._dead = 0
        self._evicted = 0
        self._per_topic: dict[str, int] = {}
        self._per_sender: dict[str, int] = {}
        #: called when an endpoint's load drops (the shell's backpressure waiters); None when idle
        self.on_space: Callable[[], None] | None = None

    # ------------------------------------------------------------------ configuration

    def configure(self, config: BusConfig) -> None:
        """Replace the limits; the DLQ and history keep their newest entries (BUS-040)."""
        self.config = config
        self._max_pending = config.max_pending
        if self._dlq.maxlen != config.dlq_max:
            entries = list(self._dlq)
            keep = entries[len(entries) - config.dlq_max :] if config.dlq_max else []
            self._evicted += len(entries) - len(keep)
            self._dlq = deque(keep, maxlen=config.dlq_max)
        if self._history.maxlen != config.history_max:
            self._history = deque(self._history, maxlen=config.history_max)

    # ------------------------------------------------------------------ endpoints and topics

    def register(self, endpoint_id: str, handler: Handler | None = None) -> None:
        """Register an endpoint (BUS-002, BUS-038); ``handler=None`` makes it pull-mode."""
        check_endpoint(endpoint_id, "endpoint")
        if endpoint_id.startswith((TOPIC_PREFIX, "bus:")):
            raise InvalidEndpointId(f"endpoint id {endpoint_id!r} uses a reserved prefix", field="endpoint")
        if endpoint_id in self._endpoints:
            raise InvalidOperation(f"endpoint {endpoint_id!r} is registered already", endpoint=endpoint_id)
        self._endpoints[endpoint_id] = self._endpoint_type(endpoint_id, handler)

    def unregister(self, endpoint_id: str) -> None:
        """The endpoint leaves (BUS-037): cancel, answer, dead-letter, unsubscribe, in that order."""
        ep = self._endpoint(endpoint_id)
        del self._endpoints[endpoint_id]
        ep.closed = True
        for rid, o in list(self._outstanding.items()):
            if o.requester is ep:
                del self._outstanding[rid]
                self._drop_timer(o)
                if o.waiter is not None:
                    o.waiter(None)
        for rid, o in list(self._outstanding.items()):
            if o.target == endpoint_id:
                del self._outstanding[rid]
                self._drop_timer(o)
                self._answer(o, ErrorCode.ENDPOINT_CLOSED, f"endpoint {endpoint_id!r} left before answering")
        flying = list(ep.inflight.values())
        if ep.current is not None:
            flying.insert(0, ep.current)
            ep.current = None
        for entry in flying:
            self._dead_letter(entry[0], ErrorCode.ENDPOINT_CLOSED, entry[1], endpoint_id)
        ep.inflight.clear()
        for entry in ep.ordered():
            self._dead_letter(entry[0], ErrorCode.ENDPOINT_CLOSED, entry[1], endpoint_id)
        ep.clear()
        ep.flying = 0
        ep.reserved = 0
        for target in ep.topics:
            subs = self._subs[target]
            del subs[endpoint_id]
            if not subs:
                del self._subs[target]
        ep.topics.clear()
        wake = ep.wake
        ep.wake = None
        if wake is not None:
            wake()
        self._space()

    def is_registered(self, endpoint_id: str) -> bool:
        return endpoint_id in self._endpoints

    def endpoints(self) -> list[str]:
        return list(self._endpoints)

    def subscribe(self, endpoint_id: str, topic: str) -> None:
        """BUS-013; ``topic`` is the name, without ``topic:``."""
        target = self._topic_target(topic)
        ep = self._registered(endpoint_id, "subscribe")
        self._subs.setdefault(target, {})[endpoint_id] = ep
        ep.topics.add(target)

    def unsubscribe(self, endpoint_id: str, topic: str) -> None:
        target = self._topic_target(topic)
        ep = self._registered(endpoint_id, "unsubscribe")
        subs = self._subs.get(target)
        if subs is not None and subs.pop(endpoint_id, None) is not None:
            ep.topics.discard(target)
            if not subs:
                del self._subs[target]

    def subscribers(self, topic: str) -> list[str]:
        return list(self._subs.get(self._topic_target(topic), ()))

    def set_wake(self, endpoint_id: str, wake: Callable[[], None] | None) -> None:
        """Call ``wake()`` once, at the next copy enqueued to the endpoint (the shell's consumers)."""
        self._endpoint(endpoint_id).wake = wake

    @staticmethod
    def _topic_target(topic: object) -> str:
        if not isinstance(topic, str) or _TOPIC_NAME(topic) is None:
            raise InvalidEndpointId(f"{topic!r} is not a topic name (BUS-002)", field="topic")
        return TOPIC_PREFIX + topic

    def _endpoint(self, endpoint_id: str) -> _Endpoint:
        ep = self._endpoints.get(endpoint_id)
        if ep is None:
            raise InvalidOperation(f"endpoint {endpoint_id!r} is not registered", endpoint=str(endpoint_id))
        return ep

    def _registered(self, endpoint_id: str, what: str) -> _Endpoint:
        ep = self._endpoints.get(endpoint_id) if isinstance(endpoint_id, str) else None
        if ep is None:
            raise InvalidOperation(f"cannot {what}: endpoint {endpoint_id!r} is not registered")
        return ep

    # ------------------------------------------------------------------ rules

    def add_rule(self, rule: Rule) -> None:
        check_endpoint(rule.destination, "destination")
        if rule.id in self._rules:
            raise InvalidOperation(f"rule {rule.id!r} exists already", rule=rule.id)
        self._rules[rule.id] = rule
        self._sort_rules()

    def remove_rule(self, rule_id: str) -> None:
        if self._rules.pop(rule_id, None) is None:
            raise InvalidOperation(f"no rule {rule_id!r}", rule=str(rule_id))
        self._sort_rules()

    def enable_rule(self, rule_id: str, enabled: bool) -> None:
        rule = self._rules.get(rule_id)
        if rule is None:
            raise InvalidOperation(f"no rule {rule_id!r}", rule=str(rule_id))
        self._rules[rule_id] = replace(rule, enabled=bool(enabled))
        self._sort_rules()

    def rules(self) -> list[Rule]:
        return list(self._rules.values())

    def _sort_rules(self) -> None:
        ordered = sorted(enumerate(self._rules.values()), key=lambda ir: (-ir[1].priority, ir[0]))
        self._active = tuple(r for _, r in ordered if r.enabled)

    # ------------------------------------------------------------------ submission

    def submit(
        self,
        msg: Message,
        *,
        timeout_ns: int | None = None,
        waiter: Waiter | None = None,
        final: bool = True,
    ) -> None:
        """Accept ``msg`` or raise the error of spec/bus.md section 2 (BUS-005..BUS-008).

        ``timeout_ns`` overrides a ``Request``'s timeout and ``waiter`` takes its answer instead of
        the requester's queue. ``final=False`` (a sender that will wait and retry) leaves a
        ``BACKPRESSURE`` refusal out of the ``rejected`` count.
        """
        h = msg.header
        mt = h.message_type
        if (mt is _EVENT or mt is _HEARTBEAT) and h.ttl is None and not self._active and self._fast(msg, h):
            return
        try:
            self._submit(msg, timeout_ns, waiter)
        except Backpressure:
            if final:
                self._rejected += 1
            raise
        except ProtocolError:
            self._rejected += 1
            raise

    def _fast(self, msg: Message, h: Header) -> bool:
        """The fast path of an Event or Heartbeat with no ttl and no active rule, to an endpoint
        or a topic: it commits only when every check of section 2 passes (else returns False and
        the full path decides, in the spec's order)."""
        target = h.target
        ep = self._endpoints.get(target)
        limit = self._max_pending
        eps: Iterable[_Endpoint]
        if ep is not None:
            if ep.queued + ep.flying + ep.reserved >= limit:
                return False
            eps = (ep,)
        else:
            subs = self._subs.get(target)
            if subs is None:
                return False
            eps = subs.values()  # a live view: nothing below changes the subscriptions
            for e in eps:
                if e.queued + e.flying + e.reserved >= limit:
                    return False
        p = msg.payload
        tp = type(p)
        meta = msg.metadata
        if not (
            h.version.major == 1
            and (
                p is None
                or tp is int
                or tp is bool
                or tp is float
                or (tp is str and len(p) < _FAST_SIZE // 6)
                or ((tp is dict or tp is list) and _fits(p))
            )
            and (not meta or _fits(meta))
        ):
            return False
        self._accepted += 1
        ps = self._per_sender
        src = h.source
        ps[src] = ps.get(src, 0) + 1
        self._history.append(msg)
        entry = (msg, 0)
        key = -h.priority
        if ep is None:
            pt = self._per_topic
            pt[target] = pt.get(target, 0) + 1
        for e in eps:
            level = e.levels.get(key)
            if level:
                level.append(entry)
                e.queued += 1
            else:
                e.push(entry)
            wake = e.wake
            if wake is not None:
                e.wake = None
                wake()
        return True

    def note_rejected(self) -> None:
        """Count a refusal that :meth:`submit` left uncounted (``final=False``)."""
        self._rejected += 1

    def _submit(self, msg: Message, timeout_ns: int | None, waiter: Waiter | None) -> None:
        h = msg.header
        check_size(msg)
        if h.version.major != 1:
            raise InvalidProtocolVersion(h.version.major, h.version.minor)
        ttl = h.ttl
        if ttl is not None and self.clock.now_ns() - h.timestamp.ns > ttl.secs * NS + ttl.nanos:
            raise TtlExpired(f"message {h.id} expired before it was accepted", id=h.id)
        mtype = h.message_type
        if mtype is _REQUEST and timeout_ns is None:
            meta = msg.metadata
            timeout_ns = meta.get(TIMEOUT_KEY) if meta else None
            if timeout_ns is not None and (type(timeout_ns) is not int or not 0 <= timeout_ns <= _I63):
                raise InvalidOperation(f"{TIMEOUT_KEY} must be an integer in [0, 2^63-1], got {timeout_ns!r}")
        target = h.target
        ep = self._endpoints.get(target)
        topic: str | None = None
        answers: _Outstanding | None = None
        unmatched = False
        recipients: list[_Endpoint]
        if ep is not None:
            recipients = [ep]
            if mtype is _RESPONSE or mtype is _ERROR:
                o = self._outstanding.get(h.correlation_id) if h.correlation_id is not None else None
                if o is not None and o.requester is ep:
                    answers = o
                elif mtype is _RESPONSE:
                    recipients = []
                    unmatched = True
        elif target.startswith(TOPIC_PREFIX):
            if mtype is _REQUEST or mtype is _RESPONSE:
                raise NoRoute(f"a {mtype.value} cannot go to a topic (BUS-012)", target=target)
            topic = target
            subs = self._subs.get(target)
            recipients = list(subs.values()) if subs else []
        elif target.startswith("bus:"):
            if target != BROADCAST:
                raise NoRoute(f"no bus address {target!r} (BUS-001)", target=target)
            if mtype is _REQUEST or mtype is _RESPONSE:
                raise NoRoute(f"a {mtype.value} cannot be broadcast (BUS-012)", target=target)
            src = h.source
            recipients = [e for e in self._endpoints.values() if e.id != src]
        else:
            recipients = []
            unmatched = mtype is _RESPONSE
        requester: _Endpoint | None = None
        if mtype is _REQUEST:
            requester = self._endpoints.get(h.source)
            if requester is None:
                raise NoRoute(f"requester {h.source!r} is not registered (BUS-019)", source=h.source)
        missing: list[str] = []
        if self._active:
            names = {e.id for e in recipients}
            if unmatched:
                names.add(target)
            tp = topic[6:] if topic is not None else None
            for rule in self._active:
                if rule.matches(h, tp):
                    dest = rule.destination
                    if dest not in names:
                        names.add(dest)
                        dep = self._endpoints.get(dest)
                        if dep is None:
                            missing.append(dest)
                        else:
                            recipients.append(dep)
                    if rule.final:
                        break
        if not recipients and topic is None and target != BROADCAST and not unmatched:
            raise NoRoute(f"no endpoint {target!r} and no rule routes the message (BUS-009)", target=target)
        # room (BUS-034, BUS-035)
        limit = self.config.max_pending
        full: list[str] | None = None
        answered = answers.requester if answers is not None else None
        for r in recipients:
            need = 0 if r is answered else 1
            if requester is r:
                need += 1
            if (
                need
                and r.queued + r.flying + r.reserved + need > limit
                and not self._room_after_sweep(r, need)
            ):
                (full := full or []).append(r.id)
        if (
            requester is not None
            and requester not in recipients
            and requester.load() + 1 > limit
            and not self._room_after_sweep(requester, 1)
        ):
            (full := full or []).append(requester.id)
        if full:
            raise Backpressure(f"no room at {', '.join(full)} (BUS-035)", full=full)
        # commit (BUS-008)
        self._accepted += 1
        src = h.source
        ps = self._per_sender
        ps[src] = ps.get(src, 0) + 1
        if topic is not None:
            pt = self._per_topic
            pt[topic] = pt.get(topic, 0) + 1
        self._history.append(msg)
        entry = (msg, 0)
        for r in recipients:
            if answers is not None and r is answers.requester:
                del self._outstanding[answers.request.header.id]
                self._drop_timer(answers)
                r.reserved -= 1
                if answers.waiter is not None:
                    self._delivered += 1
                    answers.waiter(msg)
                    continue
            r.push(entry)
            wake = r.wake
            if wake is not None:
                r.wake = None
                wake()
        if answers is not None and answers.waiter is not None:
            self._space()  # the reserved slot went to the waiter
        if unmatched:
            self._dead_letter(msg, ErrorCode.UNMATCHED_RESPONSE, 0, target)
        for dest in missing:
            self._dead_letter(msg, ErrorCode.NO_ROUTE, 0, dest)
        if requester is not None:
            timeout = self.config.request_timeout_ns if timeout_ns is None else timeout_ns
            deadline = self.clock.now_ns() + timeout
            o = _Outstanding(msg, requester, deadline, waiter)
            self._outstanding[h.id] = o
            requester.reserved += 1
            self._timer_seq += 1
            heapq.heappush(self._timers, (o.due_ns, self._timer_seq, o))

    def _room_after_sweep(self, ep: _Endpoint, need: int) -> bool:
        """Dead-letter the endpoint's expired queued copies in delivery order (BUS-035)."""
        now = self.clock.now_ns()
        entries = ep.ordered()
        if any(_expired(e[0], now) for e in entries):
            ep.clear()
            for e in entries:
                if _expired(e[0], now):
                    self._dead_letter(e[0], ErrorCode.TTL_EXPIRED, e[1], ep.id)
                else:
                    ep.push(e)
        return ep.load() + need <= self.config.max_pending

    # ------------------------------------------------------------------ requests and time

    def call_at(self, due_ns: int, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` at the first :meth:`poll` with ``now >= due_ns``; timers due together
        run in due order, then in the order they were set."""
        handle = TimerHandle(due_ns, callback)
        self._timer_seq += 1
        heapq.heappush(self._timers, (due_ns, self._timer_seq, handle))
        return handle

    def _drop_timer(self, handle: TimerHandle) -> None:
        """Cancel a request's timeout timer once the request is settled. The heap is rebuilt
        without the cancelled timers when they are most of it, as asyncio does: answered requests
        would otherwise keep their timer (and the request) in the heap for the whole timeout."""
        if handle.cancelled:
            return
        handle.cancelled = True
        self._timers_dropped += 1
        timers = self._timers
        if self._timers_dropped > 256 and self._timers_dropped * 2 > len(timers):
            timers[:] = [t for t in timers if not t[2].cancelled]
            heapq.heapify(timers)
            self._timers_dropped = 0

    def next_due(self) -> int | None:
        """The instant of the earliest live timer (for shells that sleep until then)."""
        timers = self._timers
        while timers and timers[0][2].cancelled:
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def poll(self) -> int:
        """Fire every timer due at the clock's now (BUS-024, BUS-045); return how many ran."""
        now = self.clock.now_ns()
        timers = self._timers
        n = 0
        while timers and timers[0][0] <= now:
            handle = heapq.heappop(timers)[2]
            if not handle.cancelled:
                handle.cancelled = True
                if isinstance(handle, _Outstanding):
                    self._time_out(handle.request.header.id, handle)
                else:
                    handle.callback()
                n += 1
        return n

    def _time_out(self, rid: str, o: _Outstanding) -> None:
        if self._outstanding.get(rid) is o:
            del self._outstanding[rid]
            self._answer(o, ErrorCode.REQUEST_TIMEOUT, f"no answer to request {rid} in time")

    def _answer(self, o: _Outstanding, code: ErrorCode, text: str) -> None:
        """The bus's own answer to an outstanding request (BUS-024, BUS-037)."""
        req = o.request.header
        msg = Message(
            Header(
                new_id(),
                req.id,
                _ERROR,
                SYSTEM_SOURCE,
                req.source,
                Timestamp(self.clock.now_ns()),
                None,
                req.priority,
                CURRENT_VERSION,
            ),
            error_payload(code, text, request_id=req.id),
            {},
        )
        r = o.requester
        r.reserved -= 1
        if o.waiter is not None:
            self._delivered += 1
            o.waiter(msg)
            self._space()
            return
        r.push((msg, 0))
        wake = r.wake
        if wake is not None:
            r.wake = None
            wake()

    def outstanding(self) -> list[Message]:
        """The outstanding requests, in acceptance order."""
        return [o.request for o in self._outstanding.values()]

    # ------------------------------------------------------------------ delivery

    def take(self, endpoint_id: str) -> Delivery | None:
        """Pull mode: the next copy for the endpoint, now in flight (expired ones are dead-lettered
        on the way, BUS-029), or ``None``. Settle it with :meth:`settle`."""
        ep = self._endpoint(endpoint_id)
        while ep.queued:
            entry = ep.pop()
            msg = entry[0]
            if msg.header.ttl is not None and _expired(msg, self.clock.now_ns()):
                self._dead_letter(msg, ErrorCode.TTL_EXPIRED, entry[1], ep.id)
                self._space()
                continue
            ep.inflight[msg.header.id] = entry
            ep.flying += 1
            return Delivery(msg, entry[1] + 1)
        return None

    def in_flight(self, endpoint_id: str, message_id: str) -> Message | None:
        """The copy with id ``message_id`` in flight to the endpoint (taken, not settled), or ``None``."""
        ep = self._endpoints.get(endpoint_id)
        entry = ep.inflight.get(message_id) if ep is not None else None
        return entry[0] if entry is not None else None

    def receive(self, endpoint_id: str) -> Message | None:
        """Pull mode, taking is acknowledging (BUS-030): the next message, delivered, or ``None``."""
        d = self.take(endpoint_id)
        if d is None:
            return None
        self.settle(endpoint_id, d.message.header.id, True)
        return d.message

    def settle(self, endpoint_id: str, message_id: str, ok: bool) -> None:
        """The outcome of an attempt (BUS-030, BUS-031). Settling a copy the bus no longer holds
        (its endpoint left, BUS-037) does nothing."""
        ep = self._endpoints.get(endpoint_id)
        if ep is None:
            return
        entry = ep.inflight.pop(message_id, None)
        if entry is None:
            raise InvalidOperation(f"message {message_id} is not in flight to {endpoint_id!r}")
        ep.flying -= 1
        self._outcome(ep, entry, ok)
        self._space()

    def _outcome(self, ep: _Endpoint, entry: _Entry, ok: bool) -> None:
        if ok:
            self._delivered += 1
            return
        self._failed += 1
        attempts = entry[1] + 1
        if attempts >= self.config.max_attempts:
            self._dead_letter(entry[0], ErrorCode.HANDLER_FAILED, attempts, ep.id)
        else:
            ep.push((entry[0], attempts))  # BUS-028: behind its level

    def deliver(self, endpoint_id: str) -> int:
        """Run the endpoint's handler on its pending copies, with retries, until its queue is
        empty (BUS-027..BUS-032); return the successful deliveries. Re-entrant calls return 0."""
        ep = self._endpoint(endpoint_id)
        handler = ep.handler
        if handler is None:
            raise InvalidOperation(f"endpoint {endpoint_id!r} has no handler (pull mode)")
        if ep.delivering:
            return 0
        ep.delivering = True
        keys = ep.keys
        levels = ep.levels
        clock = self.clock
        delivered = 0
        try:
            while keys and not ep.closed:
                key = keys[0]
                level = levels[key]
                entry = level.popleft()
                if not level:
                    del keys[0]
                ep.queued -= 1
                msg = entry[0]
                if msg.header.ttl is not None and _expired(msg, clock.now_ns()):
                    self._dead_letter(msg, ErrorCode.TTL_EXPIRED, entry[1], ep.id)
                    continue
                ep.current = entry
                ep.flying += 1
                try:
                    handler(msg, entry[1] + 1)
                    ok = True
                except Exception:  # BUS-032: a failing handler fails its own copy only
                    ok = False
                if ep.closed:
                    break  # the endpoint left during the call; the copy is a dead letter (BUS-037)
                ep.current = None
                ep.flying -= 1
                if ok:
                    self._delivered += 1
                    delivered += 1
                else:
                    self._outcome(ep, entry, False)
        finally:
            ep.delivering = False
            self._space()
        return delivered

    def pump(self) -> int:
        """Deliver to every endpoint with a handler, in registration order, until none has pending
        copies; return the successful deliveries."""
        total = 0
        while True:
            busy = [e for e in self._endpoints.values() if e.handler is not None and e.queued]
            if not busy:
                return total
            for ep in busy:
                if not ep.closed:
                    total += self.deliver(ep.id)

    def pending(self, endpoint_id: str) -> int:
        ep = self._endpoint(endpoint_id)
        return ep.queued + ep.flying

    def load(self, endpoint_id: str) -> int:
        """Pending copies plus reserved answer slots (BUS-034)."""
        return self._endpoint(endpoint_id).load()

    def _space(self) -> None:
        cb = self.on_space
        if cb is not None:
            cb()

    # ------------------------------------------------------------------ dead letters, history, stats

    def _dead_letter(self, msg: Message, reason: ErrorCode, attempts: int, recipient: str) -> None:
        self._dead += 1
        dlq = self._dlq
        if len(dlq) == dlq.maxlen:
            self._evicted += 1  # the oldest goes (BUS-040); with dlq_max = 0 the new one does
        dlq.append(DeadLetter(msg, reason, attempts, recipient, self.clock.now_ns()))

    def dead_letters(self) -> list[DeadLetter]:
        return list(self._dlq)

    def history(self) -> list[Message]:
        return list(self._history)

    def stats(self) -> BusStats:
        by_ep = {e.id: e.queued + e.flying for e in self._endpoints.values()}
        return BusStats(
            accepted=self._accepted,
            rejected=self._rejected,
            delivered=self._delivered,
            failed=self._failed,
            dead_lettered=self._dead,
            dlq_evicted=self._evicted,
            pending=sum(by_ep.values()),
            outstanding_requests=len(self._outstanding),
            per_topic={t[6:]: n for t, n in self._per_topic.items()},
            per_sender=dict(self._per_sender),
            pending_by_endpoint=by_ep,
        )


def _expired(msg: Message, now: int) -> bool:
    h = msg.header
    ttl = h.ttl
    return ttl is not None and now - h.timestamp.ns > ttl.secs * NS + ttl.nanos


def dead_letter_to_data(entry: DeadLetter) -> dict[str, Any]:
    """The JSON form of a dead-letter entry (spec/bus.md section 1)."""
    from .._codec import message_to_data

    return {
        "message": message_to_data(entry.message),
        "reason": entry.reason.value,
        "attempts": entry.attempts,
        "recipient": entry.recipient,
        "time": format_rfc3339(entry.time_ns),
    }


__all__ = [
    "BROADCAST",
    "MAX_MESSAGE_SIZE",
    "SYSTEM_SOURCE",
    "TIMEOUT_KEY",
    "TOPIC_PREFIX",
    "BusConfig",
    "BusCore",
    "BusStats",
    "DeadLetter",
    "Delivery",
    "Handler",
    "Rule",
    "TimerHandle",
    "Waiter",
    "check_size",
    "dead_letter_to_data",
    "error_payload",
]
