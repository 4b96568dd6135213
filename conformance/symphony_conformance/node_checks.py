"""Wire checks of the profile ``bus-node`` (spec/bus.md section 14) against a running bus node.

Each check is a plain function ``check_*(address, multi)`` that raises :class:`AssertionError`
naming the requirement ids it verifies (the ids its docstring begins with, :func:`requirements_of`).
``address`` is a node's ``unix:``, ``fifo:`` or ``stdio:`` address; ``multi`` says whether the
check may open several connections to one node (not on ``stdio:``, where every connection is a
child of its own). The checks move bytes with
:class:`~symphony_conformance.transport_checks.RawWire` (the framing and the hello of
spec/transport.md) but build every message as JSON here and read every answer as JSON, so they
test the node's wire protocol, not a client library. Every read is bounded by a timeout: a node
that hangs fails the check, the check never hangs.

The node is shared by the checks of a run (and may be any implementation's, or a production node
given with ``--endpoint``): every check uses fresh endpoint ids and topics, and reads only its own
dead letters.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Final

from ._wirecheck import check as _check
from ._wirecheck import fail as _fail
from ._wirecheck import frame as _frame
from .transport_checks import RawWire

SYSTEM: Final = "bus:system"
ACK: Final = "bus:ack"
UNKNOWN: Final = "bus:unknown"
REPLY: Final = "bus.reply"
# The timeouts are read when a check runs (tests of the harness shorten them).
#: Seconds a check waits for an answer or a copy that must come.
WAIT = 5.0
#: Seconds a check watches for a frame that must not come.
QUIET = 0.4
#: Seconds a check gives a node to notice a connection that ended (NODE-008).
SETTLE = 3.0
STATS_KEYS: Final = frozenset(
    {
        "accepted",
        "rejected",
        "delivered",
        "failed",
        "dead_lettered",
        "dlq_evicted",
        "pending",
        "outstanding_requests",
        "per_topic",
        "per_sender",
        "pending_by_endpoint",
    }
)
#: spec/bus.md section 12 and spec/protocol.md section 2: the category of the codes the checks expect.
CATEGORIES: Final = {
    "INVALID_OPERATION": "validation",
    "INVALID_ENDPOINT_ID": "validation",
    "NO_ROUTE": "routing",
    "REQUEST_TIMEOUT": "timeout",
    "ENDPOINT_CLOSED": "delivery",
}

Msg = dict[str, Any]
NodeCheck = Callable[[str, bool], None]


class NotOffered(Exception):
    """The node does not offer what a check needs (a codec): the case is skipped, not failed."""


def uid(prefix: str) -> str:
    """A fresh endpoint id or topic name (the node is shared by the checks of a run)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _timestamp() -> str:
    ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    ms = frac // 1_000_000
    return f"{base}.{ms:03d}Z" if ms else f"{base}Z"


def _parse_timestamp(text: str) -> tuple[int, int]:
    """Seconds and nanoseconds of a canonical timestamp (``YYYY-MM-DDTHH:MM:SS[.F]Z``)."""
    import calendar

    base, _, frac = text[:-1].partition(".")
    secs = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return secs, int((frac + "000000000")[:9]) if frac else 0


def _format_timestamp(secs: int, nanos: int) -> str:
    """The canonical form: the shortest of 0, 3, 6 or 9 fraction digits that is exact."""
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if nanos == 0:
        return base + "Z"
    digits = f"{nanos:09d}"
    n = next(n for n in (3, 6, 9) if not digits[n:].strip("0"))
    return f"{base}.{digits[:n]}Z"


def to_msgpack(m: Msg) -> bytes:
    """The MessagePack form of spec/protocol.md section 6.2, built here with the generic library."""
    import msgpack

    h = m["header"]
    corr = h["correlation_id"]
    ttl = h["ttl"]
    header = [
        uuid.UUID(h["id"]).bytes,
        None if corr is None else uuid.UUID(corr).bytes,
        h["message_type"],
        h["source"],
        h["target"],
        msgpack.Timestamp(*_parse_timestamp(h["timestamp"])),
        None if ttl is None else [ttl["secs"], ttl["nanos"]],
        h["priority"],
        [h["version"]["major"], h["version"]["minor"]],
    ]
    out: bytes = msgpack.packb([header, m["payload"], m["metadata"]], use_bin_type=True)
    return out


def from_msgpack(data: bytes) -> Any:
    """The JSON data model of a MessagePack message (spec/protocol.md section 6.2); ValueError
    when the bytes do not have the layout."""
    import msgpack

    try:
        header, payload, metadata = msgpack.unpackb(data, raw=False, strict_map_key=True)
        mid_, corr, mtype, source, target, ts, ttl, priority, version = header
        if not isinstance(ts, msgpack.Timestamp) or not isinstance(mid_, bytes):
            raise ValueError(f"id {mid_!r} or timestamp {ts!r} of the wrong type")
        return {
            "header": {
                "id": str(uuid.UUID(bytes=mid_)),
                "correlation_id": None if corr is None else str(uuid.UUID(bytes=corr)),
                "message_type": mtype,
                "source": source,
                "target": target,
                "timestamp": _format_timestamp(ts.seconds, ts.nanoseconds),
                "ttl": None if ttl is None else {"secs": ttl[0], "nanos": ttl[1]},
                "priority": priority,
                "version": {"major": version[0], "minor": version[1]},
            },
            "payload": payload,
            "metadata": metadata,
        }
    except (
        ValueError,
        TypeError,
        IndexError,
        msgpack.ExtraData,
        msgpack.FormatError,
        msgpack.StackError,
    ) as e:
        raise ValueError(str(e)) from None


def message(
    mtype: str,
    source: str,
    target: str,
    payload: Any = None,
    *,
    priority: int = 0,
    correlation_id: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Msg:
    """A canonical message in its JSON data-model form (spec/message.schema.json)."""
    return {
        "header": {
            "id": str(uuid.uuid4()),
            "correlation_id": correlation_id,
            "message_type": mtype,
            "source": source,
            "target": target,
            "timestamp": _timestamp(),
            "ttl": None,
            "priority": priority,
            "version": {"major": 1, "minor": 0},
        },
        "payload": payload,
        "metadata": dict(metadata or {}),
    }


def control(source: str, op: str, *, priority: int = 0, mtype: str = "Request", **members: Any) -> Msg:
    """A control request of spec/bus.md section 14: ``{"op": op, **members}`` to ``bus:system``."""
    return message(mtype, source, SYSTEM, {"op": op, **members}, priority=priority)


def ack(endpoint: str, copy_id: str, ok: bool = True) -> Msg:
    """An acknowledgement (spec/bus.md section 1): an Event from ``endpoint`` to ``bus:ack``."""
    return message("Event", endpoint, ACK, None, correlation_id=copy_id, metadata={"bus.ack": ok})


def mid(m: Msg) -> str:
    return str(m["header"]["id"])


def _h(m: Msg) -> dict[str, Any]:
    h: dict[str, Any] = m["header"]
    return h


def _brief(m: Msg) -> str:
    h = _h(m)
    meta = m.get("metadata") or {}
    extra = f" {REPLY}={meta[REPLY]!r}" if REPLY in meta else ""
    payload = json.dumps(m.get("payload"))[:80]
    return (
        f"{h.get('message_type')} {h.get('source')}->{h.get('target')} id={str(h.get('id'))[:8]} "
        f"corr={str(h.get('correlation_id'))[:8]} prio={h.get('priority')}{extra} {payload}"
    )


def has_id(wanted: str) -> Callable[[Msg], bool]:
    """A predicate: the message whose id is ``wanted``."""
    return lambda m: _h(m).get("id") == wanted


def is_reply(m: Msg) -> bool:
    return (m.get("metadata") or {}).get(REPLY) is True


def _schema_errors(m: Any) -> list[str]:
    from .suite._support import schema_errors

    return schema_errors(m)


class NodeWire:
    """One raw connection to a bus node, the hello done (JSON codec, length-prefixed frames).

    Frames read while looking for something else are kept (:attr:`stash`) for later lookups, so a
    check can wait for one answer while copies arrive in between; :meth:`next_frames` reads the raw
    order instead (NODE-005).
    """

    def __init__(self, address: str, reqs: str, timeout: float | None = None, codec: str = "json") -> None:
        timeout = WAIT if timeout is None else timeout
        self.reqs = reqs
        self.codec = codec
        self.timeout = timeout
        try:
            self.raw = RawWire(address, timeout)
        except (OSError, TimeoutError) as e:
            raise _fail(reqs, f"cannot connect to {address}: {e}") from None
        self.stash: list[Msg] = []
        self.closed = False
        try:
            welcome = self.raw.handshake((codec,))
        except (TimeoutError, AssertionError, ValueError) as e:
            self.raw.close()
            raise _fail(reqs, f"no welcome from {address} within {timeout} s: {e}") from None
        if welcome.get("codec") != codec:
            self.raw.close()
            if codec != "json" and "error" in welcome:
                raise NotOffered(f"the node does not speak {codec}: {welcome['error']}")
            raise _fail("NODE-001", f"the node did not accept a {codec}-only hello: {welcome}")

    # -- output

    def send(self, *msgs: Msg) -> None:
        """Write the messages in one write (frames of one connection, in this order)."""
        if self.codec == "msgpack":
            self.send_payloads(*(to_msgpack(m) for m in msgs))
        else:
            self.send_payloads(*(json.dumps(m, ensure_ascii=False).encode() for m in msgs))

    def send_payloads(self, *payloads: bytes) -> None:
        try:
            self.raw.send(b"".join(_frame(p) for p in payloads))
        except OSError as e:
            raise _fail(self.reqs, f"the node closed the connection: {e}") from None

    # -- input

    def _read(self, timeout: float) -> Msg | None:
        """The next message, or None when nothing came within ``timeout`` s (keep-alives skipped).
        The end of the stream fails the check: a node keeps a connection open (NODE-004)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.raw.timeout = left
            try:
                frame = self.raw.read_frame()
            except TimeoutError:
                return None
            except OSError as e:
                raise _fail(self.reqs, f"the connection broke: {e}") from None
            if frame is None:
                raise _fail(self.reqs, "the node closed the connection")
            if not frame:
                continue  # a keep-alive
            try:
                obj = from_msgpack(frame) if self.codec == "msgpack" else json.loads(frame)
            except ValueError as e:
                raise _fail("NODE-001", f"a frame is no {self.codec} message: {frame[:80]!r} ({e})") from None
            errors = _schema_errors(obj)
            _check(not errors, "NODE-001", f"a frame is not a message: {errors[:3]} in {frame[:200]!r}")
            out: Msg = obj
            return out

    def take(
        self, pred: Callable[[Msg], bool], what: str, timeout: float | None = None, reqs: str = ""
    ) -> Msg:
        """The first message (kept or new) that ``pred`` accepts; fail after ``timeout`` s
        (default :data:`WAIT`)."""
        timeout = WAIT if timeout is None else timeout
        for i, kept in enumerate(self.stash):
            if pred(kept):
                return self.stash.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            m = self._read(deadline - time.monotonic())
            if m is None:
                seen = "; ".join(_brief(x) for x in self.stash[-5:]) or "nothing"
                raise _fail(reqs or self.reqs, f"{what}: nothing within {timeout} s (received: {seen})")
            if pred(m):
                return m
            self.stash.append(m)

    def absent(
        self, pred: Callable[[Msg], bool], what: str, reqs: str = "", seconds: float | None = None
    ) -> None:
        """Fail when a message ``pred`` accepts is kept or arrives within ``seconds`` (default
        :data:`QUIET`)."""
        seconds = QUIET if seconds is None else seconds
        for kept in self.stash:
            _check(not pred(kept), reqs or self.reqs, f"{what}: {_brief(kept)}")
        deadline = time.monotonic() + seconds
        while True:
            m = self._read(deadline - time.monotonic())
            if m is None:
                return
            _check(not pred(m), reqs or self.reqs, f"{what}: {_brief(m)}")
            self.stash.append(m)

    def next_frames(self, n: int, timeout: float | None = None) -> list[Msg]:
        """The next ``n`` messages in arrival order (nothing may be kept)."""
        timeout = WAIT if timeout is None else timeout
        out = list(self.stash[:n])
        del self.stash[:n]
        deadline = time.monotonic() + timeout
        while len(out) < n:
            m = self._read(deadline - time.monotonic())
            if m is None:
                got = "; ".join(_brief(x) for x in out) or "nothing"
                raise _fail(self.reqs, f"{n} frames expected within {timeout} s, got {len(out)}: {got}")
            out.append(m)
        return out

    def answer(self, req: Msg, reqs: str = "", timeout: float | None = None) -> Msg:
        """The answer to ``req``: a message with its id as ``correlation_id``."""
        rid = mid(req)
        return self.take(
            lambda m: _h(m).get("correlation_id") == rid, f"the answer to {_brief(req)}", timeout, reqs
        )

    def copy_of(self, sent: Msg, reqs: str = "", timeout: float | None = None) -> Msg:
        """The delivered copy of ``sent`` (a message with its id, not a reply of the node)."""
        sid = mid(sent)
        return self.take(
            lambda m: _h(m).get("id") == sid and not is_reply(m), f"the copy of {_brief(sent)}", timeout, reqs
        )

    def call(self, req: Msg, reqs: str = "") -> Msg:
        self.send(req)
        return self.answer(req, reqs)

    def op(self, source: str, op: str, reqs: str = "", **members: Any) -> Any:
        """Perform a control op that must succeed; return its result (the Response's payload)."""
        req = control(source, op, **members)
        ans = self.call(req, reqs)
        h = _h(ans)
        _check(
            h.get("message_type") == "Response",
            reqs or self.reqs,
            f"the op {op} {members or ''} from {source} was answered {_brief(ans)}",
        )
        return ans.get("payload")

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.raw.close()

    def __enter__(self) -> NodeWire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_error(ans: Msg, code: str, reqs: str, what: str) -> None:
    """``ans`` is an Error whose payload is the error wire form with ``code``."""
    h = _h(ans)
    p = ans.get("payload")
    _check(h.get("message_type") == "Error", reqs, f"{what}: expected an Error {code}, got {_brief(ans)}")
    _check(isinstance(p, dict), reqs, f"{what}: the Error's payload is not an object: {p!r}")
    assert isinstance(p, dict)
    _check(p.get("code") == code, reqs, f"{what}: expected the code {code}, got {p.get('code')!r}")
    want = CATEGORIES.get(code)
    _check(
        want is None or p.get("category") == want,
        reqs,
        f"{what}: {code} has the category {want}, got {p.get('category')!r}",
    )
    _check(p.get("recoverable") is True, reqs, f"{what}: {code} is recoverable, got {p.get('recoverable')!r}")
    _check(isinstance(p.get("message"), str), reqs, f"{what}: the error has no message: {p}")


def _wire_error(ans: Msg, reqs: str, what: str) -> str:
    """``ans`` is an Error carrying an error wire form; return its code."""
    p = ans.get("payload")
    _check(_h(ans).get("message_type") == "Error", reqs, f"{what}: expected an Error, got {_brief(ans)}")
    ok = (
        isinstance(p, dict)
        and isinstance(p.get("code"), str)
        and re.fullmatch(r"[A-Z][A-Z0-9_]*", p["code"]) is not None
        and isinstance(p.get("category"), str)
        and isinstance(p.get("recoverable"), bool)
        and isinstance(p.get("message"), str)
    )
    _check(ok, reqs, f"{what}: the payload is not an error wire form: {p!r}")
    assert isinstance(p, dict)
    return str(p["code"])


def _open(address: str, reqs: str) -> NodeWire:
    return NodeWire(address, reqs)


def _same(got: Msg, sent: Msg, reqs: str, what: str) -> None:
    _check(got == sent, reqs, f"{what}: the copy differs from the message sent:\n  sent {sent}\n  got  {got}")


# ---------------------------------------------------------------- the checks


def check_connections(address: str, multi: bool) -> None:
    """NODE-001: every frame after the hello is a message in the negotiated codec (JSON here); a
    node serves many connections at once (four, each sending to the next): every message reaches
    its recipient on the other connection unchanged, and answers and copies keep flowing while
    the other connections stay open."""
    r = "NODE-001"
    n = 4 if multi else 1
    wires: list[NodeWire] = []
    try:
        names = [uid("ring") for _ in range(n)]
        for name in names:
            w = NodeWire(address, r) if multi or not wires else wires[0]
            if w not in wires:
                wires.append(w)
            w.op(name, "register", r, window=4)
        sent = []
        for i, name in enumerate(names):
            w = wires[i] if multi else wires[0]
            to = names[(i + 1) % n] if n > 1 else name
            m = message(
                "Event",
                name,
                to,
                {"i": i, "text": "d\u00e9j\u00e0 \u2713", "list": [1, 2.5, None, True]},
                priority=i % 10,
                metadata={"app.k": [1, {"x": None}]},
            )
            w.send(m)
            sent.append(m)
        for i, m in enumerate(sent):
            w = wires[(i + 1) % n] if multi else wires[0]
            got = w.copy_of(m, r)
            _same(got, m, r, f"connection {(i + 1) % n}")
            w.send(ack(_h(m)["target"], mid(m)))
        for i, name in enumerate(names):
            (wires[i] if multi else wires[0]).op(name, "unregister", r)
    finally:
        for w in wires:
            w.close()


def check_codecs(address: str, multi: bool) -> None:
    """NODE-001: a node speaks each connection's negotiated codec: on a MessagePack connection
    every frame it writes is a MessagePack message (answers and copies), and a message crosses
    between a MessagePack and a JSON connection unchanged both ways."""
    r = "NODE-001"
    mp = NodeWire(address, r, codec="msgpack")
    js: NodeWire | None = None
    try:
        a, b = uid("mp"), uid("js")
        mp.op(a, "register", r, window=4)
        if multi:
            js = _open(address, r)
        other = js or mp
        other.op(b, "register", r, window=4)
        payload = {"text": "d\u00e9j\u00e0 \u2713", "n": [1, -2, 2.5, 1 << 40, None, True], "m": {"k": {}}}
        there = message("Event", a, b, payload, priority=-3, metadata={"app.k": [1.5, "x"]})
        back = message("Request", b, a, payload, priority=1000)
        mp.send(there)
        other.send(back)
        _same(other.copy_of(there, r), there, r, "MessagePack to JSON" if multi else "a copy")
        _same(mp.copy_of(back, r), back, r, "JSON to MessagePack" if multi else "a copy")
        answer = message("Response", a, b, {"ok": True}, correlation_id=mid(back))
        mp.send(ack(a, mid(back)), answer)
        other.send(ack(b, mid(there)))
        _same(other.answer(back, r), answer, r, "the answer")
        _check(mp.op(a, "ping", r) == {}, r, "ping on a MessagePack connection")
        mp.op(a, "unregister", r)
        other.op(b, "unregister", r)
    finally:
        mp.close()
        if js is not None:
            js.close()


def check_control_ops(address: str, multi: bool) -> None:
    """NODE-002: every op of the table answers its result (register, subscribe, unsubscribe,
    window, ping, stats, dead_letters, unregister), and a fault the error with the code of its
    requirement: an unknown op, a malformed member, a message to bus:system that is no Request,
    an op other than register/ping/stats/dead_letters on an endpoint the connection did not
    register (INVALID_OPERATION), a reserved endpoint id or topic name (INVALID_ENDPOINT_ID), an
    endpoint registered twice (INVALID_OPERATION)."""
    r = "NODE-002"
    other: NodeWire | None = None
    with _open(address, r) as w:
        e, e2, ghost = uid("ctl"), uid("ctl"), uid("ghost")
        got = w.op(e, "register", r, window=3)
        _check(
            isinstance(got, dict) and got.get("endpoint") == e and got.get("window") == 3,
            r,
            f"register answered {got!r}, not {{endpoint, window: 3}}",
        )
        got = w.op(e2, "register", r)
        _check(
            isinstance(got, dict)
            and got.get("endpoint") == e2
            and type(got.get("window")) is int
            and 0 <= got["window"] <= 1 << 20,
            r,
            f"register without a window answered {got!r}, not {{endpoint, window}}",
        )
        for op, members, result in (
            ("subscribe", {"topic": uid("t")}, {}),
            ("unsubscribe", {"topic": uid("t")}, {}),  # what is not subscribed: nothing happens
            ("window", {"window": 0}, {"window": 0}),
            ("window", {"window": 1 << 20}, {"window": 1 << 20}),
            ("ping", {}, {}),
        ):
            got = w.op(e, op, r, **members)
            _check(got == result, r, f"{op} {members} answered {got!r}, not {result!r}")
        for source in (e, ghost):  # ping, stats, dead_letters need no endpoint of the connection
            _check(w.op(source, "ping", r) == {}, r, f"ping from {source} did not answer {{}}")
            got = w.op(source, "stats", r)
            stats = got.get("stats") if isinstance(got, dict) else None
            _check(
                isinstance(stats, dict) and set(stats) == STATS_KEYS,
                r,
                f"stats answered {got!r}: not {{stats}} with exactly the members of BUS-043",
            )
            got = w.op(source, "dead_letters", r)
            _check(
                isinstance(got, dict) and isinstance(got.get("dead_letters"), list),
                r,
                f"dead_letters answered {got!r}, not {{dead_letters: [...]}}",
            )
        _check(w.op(e2, "unregister", r) == {}, r, "unregister did not answer {}")
        faults: list[tuple[Msg, str, str]] = [
            (control(e, "teleport"), "INVALID_OPERATION", "an unknown op"),
            (message("Request", e, SYSTEM, "ping"), "INVALID_OPERATION", "a payload that is no object"),
            (message("Request", e, SYSTEM, {"window": 1}), "INVALID_OPERATION", "a payload without op"),
            (control(e, "ping", mtype="Event"), "INVALID_OPERATION", "an Event to bus:system"),
            (control(e, "window", window=(1 << 20) + 1), "INVALID_OPERATION", "a window above 2^20"),
            (control(e, "window", window="2"), "INVALID_OPERATION", "a window that is a string"),
            (control(e, "window", window=-1), "INVALID_OPERATION", "a negative window"),
            (control(e, "subscribe"), "INVALID_OPERATION", "subscribe without a topic"),
            (control(e, "subscribe", topic=""), "INVALID_ENDPOINT_ID", "subscribe to an empty topic name"),
            (control(e, "register"), "INVALID_OPERATION", "an endpoint registered twice"),
            (control("topic:x", "register"), "INVALID_ENDPOINT_ID", "register topic:x"),
            (control(SYSTEM, "register"), "INVALID_ENDPOINT_ID", "register bus:system"),
            (
                control(ghost, "subscribe", topic="t"),
                "INVALID_OPERATION",
                "subscribe an unregistered endpoint",
            ),
            (control(ghost, "window", window=1), "INVALID_OPERATION", "window of an unregistered endpoint"),
            (control(e2, "unregister"), "INVALID_OPERATION", "unregister an endpoint twice"),
        ]
        try:
            if multi:
                other = _open(address, r)
                theirs = uid("other")
                other.op(theirs, "register", r)
                for op, members in (
                    ("unregister", {}),
                    ("subscribe", {"topic": "t"}),
                    ("window", {"window": 1}),
                ):
                    faults.append(
                        (
                            control(theirs, op, **members),
                            "INVALID_OPERATION",
                            f"{op} of another connection's endpoint",
                        )
                    )
            for req, code, what in faults:
                _is_error(w.call(req, r), code, r, what)
            _check(w.op(e, "ping", r) == {}, r, "the connection did not go on after the refusals")
        finally:
            if other is not None:
                other.close()


def check_answer_form(address: str, multi: bool) -> None:
    """NODE-003: the node's own answers — a control response, a control error, a refused
    submission, a refused acknowledgement — come from bus:system to the source of the message
    they answer, with its id as correlation_id, its priority and the metadata bus.reply = true; a
    delivered copy carries no bus.reply; a submission that carries bus.reply (true or false) is
    refused with INVALID_OPERATION and delivered to no one."""
    r = "NODE-003"
    with _open(address, r) as w:
        e = uid("form")
        w.op(e, "register", r, window=8)
        probes = [
            control(e, "ping", priority=7),
            control(e, "stats", priority=3),
            control(e, "teleport", priority=9),
            message("Event", e, uid("nobody"), {"n": 1}, priority=4),  # NO_ROUTE
            message("Event", uid("ghost"), e, {"n": 2}, priority=2),  # not this connection's
            ack(e, str(uuid.uuid4())),
        ]
        for req in probes:
            ans = w.call(req, r)
            h, rh = _h(ans), _h(req)
            what = f"the answer to {_brief(req)}"
            _check(h.get("source") == SYSTEM, r, f"{what} comes from {h.get('source')!r}, not bus:system")
            _check(
                h.get("target") == rh["source"],
                r,
                f"{what} goes to {h.get('target')!r}, not {rh['source']!r}",
            )
            _check(
                h.get("priority") == rh["priority"],
                r,
                f"{what} has the priority {h.get('priority')}, not {rh['priority']}",
            )
            _check(
                is_reply(ans),
                r,
                f"{what} does not carry the metadata bus.reply = true: {ans.get('metadata')}",
            )
        for flag in (True, False):
            bad = message("Event", e, e, {"flag": flag}, metadata={REPLY: flag, "app": 1})
            ans = w.call(bad, r)
            _is_error(ans, "INVALID_OPERATION", r, f"a submission carrying bus.reply = {flag}")
            w.absent(has_id(mid(bad)), "a submission carrying bus.reply was delivered", r)
        good = message("Event", e, e, {"n": 3}, metadata={"app": 1})
        w.send(good)
        got = w.copy_of(good, r)
        _check(
            REPLY not in (got.get("metadata") or {}),
            r,
            f"a delivered copy carries bus.reply: {got.get('metadata')}",
        )
        w.send(ack(e, mid(got)))
        w.op(e, "unregister", r)


def check_submissions(address: str, multi: bool) -> None:
    """NODE-004: a submission is accepted only from an endpoint the same connection registered,
    else refused with INVALID_OPERATION; a refusal (an acknowledgement's included) is an Error
    carrying the error wire form of the fault (NO_ROUTE for a target nobody has); an accepted
    submission is not answered; a frame that does not decode (not JSON, JSON that is no message)
    is answered with an Error from bus:system to bus:unknown, correlation_id null; none of these
    closes the connection."""
    r = "NODE-004"
    other: NodeWire | None = None
    with _open(address, r) as w:
        e = uid("sub")
        w.op(e, "register", r, window=0)
        refused = [
            (message("Event", uid("ghost"), e, {"n": 1}), "INVALID_OPERATION", "a source never registered")
        ]
        try:
            if multi:
                other = _open(address, r)
                theirs = uid("other")
                other.op(theirs, "register", r, window=0)
                refused.append(
                    (
                        message("Event", theirs, e, {"n": 2}),
                        "INVALID_OPERATION",
                        "another connection's endpoint as source",
                    )
                )
            refused.append(
                (message("Event", e, uid("nobody"), {"n": 3}), "NO_ROUTE", "a target nobody registered")
            )
            refused.append((message("Request", e, "topic:x", {"n": 4}), "NO_ROUTE", "a Request to a topic"))
            for req, code, what in refused:
                _is_error(w.call(req, r), code, r, what)
            w.op(e, "ping", r)
            _wire_error(w.call(ack(e, str(uuid.uuid4())), r), r, "a refused acknowledgement")
            accepted = [message("Event", e, e, {"n": i}) for i in range(3)]
            ping = control(e, "ping")
            w.send(*accepted, ping)
            w.answer(ping, r)
            ids = {mid(m) for m in accepted}
            w.absent(lambda m: _h(m).get("correlation_id") in ids, "an accepted submission was answered", r)
            for junk in (b"\xff\x00 not a message", b'{"header": 1}', b"[]"):
                w.send_payloads(junk)
                ans = w.take(
                    lambda m: _h(m).get("target") == UNKNOWN,
                    f"the answer to the undecodable frame {junk!r}",
                    reqs=r,
                )
                h = _h(ans)
                _check(h.get("source") == SYSTEM, r, f"the answer to garbage comes from {h.get('source')!r}")
                _check(
                    h.get("correlation_id") is None,
                    r,
                    f"the answer to garbage has correlation_id {h.get('correlation_id')!r}",
                )
                _wire_error(ans, r, f"the answer to {junk!r}")
                _check(w.op(e, "ping", r) == {}, r, "the connection did not go on after an undecodable frame")
            w.op(e, "unregister", r)
        finally:
            if other is not None:
                other.close()


def check_order(address: str, multi: bool) -> None:
    """NODE-005: a node handles one connection's frames in the order they arrive: the answers to
    frames written at once (refused submissions, control requests, a refused acknowledgement,
    accepted submissions that get none) come in the order of the frames, and the answer to a
    ping follows the answers to every frame sent before it."""
    r = "NODE-005"
    with _open(address, r) as w:
        e = uid("ord")
        w.op(e, "register", r, window=0)
        for _ in range(3):
            frames: list[Msg] = []
            answered: list[str] = []
            for i in range(4):
                refused = message("Event", e, uid("nobody"), {"i": i})
                ctl = (
                    control(e, "stats"),
                    control(e, "subscribe", topic=uid("t")),
                    control(e, "dead_letters"),
                    control(e, "window", window=0),
                )[i]
                accepted = message("Event", e, e, {"i": i})
                bad_ack = ack(e, str(uuid.uuid4()))
                ghost = message("Event", uid("ghost"), e, {"i": i})
                frames += [refused, ctl, accepted, bad_ack, ghost]
                answered += [mid(refused), mid(ctl), mid(bad_ack), mid(ghost)]
            ping = control(e, "ping")
            frames.append(ping)
            answered.append(mid(ping))
            w.send(*frames)
            got = w.next_frames(len(answered))
            order = [_h(m).get("correlation_id") for m in got]
            if order != answered:
                names = {x: i for i, x in enumerate(answered)}
                shown = [names.get(str(c), f"?{c}") for c in order]
                raise _fail(
                    r, f"answers out of order: frames answered as {shown}, not 0..{len(answered) - 1}"
                )
            w.absent(
                lambda m: True, "a frame after the ping's answer (an accepted submission answered?)", r, 0.1
            )
        w.op(e, "unregister", r)


def check_window(address: str, multi: bool) -> None:
    """NODE-006: with window 0 a node sends no copy and keeps them pending; opened, it sends them
    highest priority first and in arrival order within a priority; with window 2 it sends two
    and the next only when one is acknowledged; an acknowledgement with bus.ack = false gets the
    copy again; an acknowledgement of a copy not in flight to that endpoint (unknown, acknowledged
    already, another endpoint's copy), or from an endpoint of another connection, is refused with
    INVALID_OPERATION."""
    r = "NODE-006"
    other: NodeWire | None = None
    with _open(address, r) as w:
        s, d = uid("snd"), uid("dst")
        w.op(s, "register", r, window=0)
        w.op(d, "register", r, window=0)
        prios = [1, 5, 3, 5, 9, 0, 3]
        sent = [message("Event", s, d, {"i": i}, priority=p) for i, p in enumerate(prios)]
        w.send(*sent)
        w.op(s, "ping", r)
        w.absent(lambda m: _h(m).get("target") == d and not is_reply(m), "window 0, yet a copy was sent", r)
        stats = w.op(s, "stats", r).get("stats", {})
        held = stats.get("pending_by_endpoint", {}).get(d)
        _check(held == len(sent), r, f"window 0: {held} copies pending at the node, not {len(sent)}")
        w.op(d, "window", r, window=len(sent))
        expected = sorted(range(len(sent)), key=lambda i: (-prios[i], i))
        got = w.next_frames(len(sent))
        order = [next((i for i, m in enumerate(sent) if mid(m) == mid(g)), -1) for g in got]
        _check(
            order == expected,
            r,
            f"copies sent in the order {order} (priorities {[prios[i] if i >= 0 else None for i in order]}), "
            f"not {expected}",
        )
        for g in got:
            _same(g, sent[order[got.index(g)]], r, "a delivered copy")
            w.send(ack(d, mid(g)))
        # window 2: two in flight, the next when one is acknowledged
        w.op(d, "window", r, window=2)
        four = [message("Event", s, d, {"n": i}) for i in range(4)]
        w.send(*four)
        first = w.next_frames(2)
        _check([mid(m) for m in first] == [mid(m) for m in four[:2]], r, "window 2: not the first two copies")
        w.absent(lambda m: not is_reply(m), "window 2 with two copies in flight, yet a third was sent", r)
        w.send(ack(d, mid(four[0])))
        w.copy_of(four[2], r)
        w.absent(lambda m: _h(m).get("id") == mid(four[3]), "window 2: a third copy in flight", r, 0.2)
        # bad acknowledgements: each refused, none opens the window
        bad = [
            (ack(d, mid(four[0])), "a copy acknowledged already"),
            (ack(d, str(uuid.uuid4())), "an unknown copy"),
            (ack(s, mid(four[1])), "another endpoint's copy"),
            (ack(uid("ghost"), mid(four[1])), "a source that is no endpoint of the connection"),
        ]
        try:
            if multi:
                other = _open(address, r)
                bad.append((ack(d, mid(four[1])), "an endpoint of another connection"))
            for req, what in bad:
                conn = other if what == "an endpoint of another connection" and other is not None else w
                _is_error(conn.call(req, r), "INVALID_OPERATION", r, f"an acknowledgement of {what}")
        finally:
            if other is not None:
                other.close()
        w.absent(
            lambda m: _h(m).get("id") == mid(four[3]), "a refused acknowledgement opened the window", r, 0.2
        )
        # bus.ack = false: the copy comes again
        w.send(ack(d, mid(four[1]), ok=False))  # retried behind four[3] (BUS-028)
        w.copy_of(four[3], r)
        w.send(ack(d, mid(four[2])))
        again = w.copy_of(four[1], r)
        _same(again, four[1], r, "a copy delivered again after bus.ack = false")
        for m in (four[3], four[1]):
            w.send(ack(d, mid(m)))
        w.op(s, "ping", r)
        w.op(d, "unregister", r)
        w.op(s, "unregister", r)


def check_answers(address: str, multi: bool) -> None:
    """NODE-007: the answer to a Request an endpoint of the connection submitted — the
    responder's Response, the node's REQUEST_TIMEOUT — is written at once although the
    requester's window is full of copies it has not acknowledged, and it is not acknowledged:
    it counts as delivered (an acknowledgement of it is refused; the requester's pending count
    holds only its copies)."""
    r = "NODE-007"
    with _open(address, r) as w:
        req_ep, resp_ep = uid("rq"), uid("rs")
        w.op(req_ep, "register", r, window=1)
        w.op(resp_ep, "register", r, window=8)
        fill = [message("Event", resp_ep, req_ep, {"fill": i}) for i in range(2)]
        w.send(*fill)
        w.copy_of(fill[0], r)  # in flight, never acknowledged: the window is full
        q = message("Request", req_ep, resp_ep, {"q": 1}, priority=2)
        w.send(q)
        got_q = w.copy_of(q, r)
        w.send(ack(resp_ep, mid(got_q)))
        resp = message("Response", resp_ep, req_ep, {"a": 1}, correlation_id=mid(q), priority=2)
        w.send(resp)
        answer = w.take(
            lambda m: _h(m).get("id") == mid(resp), "the response, with the requester's window full", reqs=r
        )
        _same(answer, resp, r, "the answer")
        q2 = message("Request", req_ep, resp_ep, {"q": 2}, metadata={"bus.timeout_ns": 50_000_000})
        w.send(q2)
        got_q2 = w.copy_of(q2, r)
        w.send(ack(resp_ep, mid(got_q2)))
        timeout = w.take(
            lambda m: _h(m).get("correlation_id") == mid(q2) and _h(m).get("source") == SYSTEM,
            "REQUEST_TIMEOUT of a request nobody answers (bus.timeout_ns 50 ms), with the window full",
            reqs=r,
        )
        _is_error(timeout, "REQUEST_TIMEOUT", r, "the timed-out request's answer")
        for ans, what in ((answer, "the response"), (timeout, "the REQUEST_TIMEOUT")):
            _is_error(
                w.call(ack(req_ep, mid(ans)), r), "INVALID_OPERATION", r, f"an acknowledgement of {what}"
            )
        stats = w.op(resp_ep, "stats", r).get("stats", {})
        pending = stats.get("pending_by_endpoint", {}).get(req_ep)
        _check(
            pending == 2, r, f"the requester has {pending} pending copies, not 2 (its answers are delivered)"
        )
        w.absent(lambda m: _h(m).get("id") == mid(fill[1]), "a copy beyond window 1 was sent", r, 0.1)
        w.op(req_ep, "unregister", r)
        w.op(resp_ep, "unregister", r)


def _dead_letters(w: NodeWire, source: str, recipient: str, reqs: str) -> list[dict[str, Any]]:
    got = w.op(source, "dead_letters", reqs)
    entries = got.get("dead_letters") if isinstance(got, dict) else None
    _check(isinstance(entries, list), reqs, f"dead_letters answered {got!r}")
    assert isinstance(entries, list)
    return [d for d in entries if isinstance(d, dict) and d.get("recipient") == recipient]


def check_connection_end(address: str, multi: bool) -> None:
    """NODE-008: when a connection ends its endpoints leave at once: the copy in flight and then
    the queued ones become ENDPOINT_CLOSED dead letters in that order, a request addressed to it
    is answered with ENDPOINT_CLOSED, its own outstanding request is cancelled (a later response
    is UNMATCHED_RESPONSE), its subscriptions are gone and its id can be registered again."""
    r = "NODE-008"
    if not multi:
        raise ValueError("check_connection_end needs a second connection")
    with _open(address, r) as b:
        a = _open(address, r)
        try:
            x, y, topic = uid("gone"), uid("stay"), uid("t")
            a.op(x, "register", r, window=1)
            a.op(x, "subscribe", r, topic=topic)
            b.op(y, "register", r, window=8)
            qx = message("Request", x, y, {"from": "x"})
            a.send(qx)
            got_qx = b.copy_of(qx, r)
            b.send(ack(y, mid(got_qx)))
            e1, e2 = (message("Event", y, x, {"e": i}) for i in (1, 2))
            qy = message("Request", y, x, {"from": "y"})
            b.send(e1, e2, qy)
            b.op(y, "ping", r)
            a.copy_of(e1, r)  # in flight when the connection ends
        finally:
            a.close()
        ans = b.take(
            lambda m: _h(m).get("correlation_id") == mid(qy),
            "the ENDPOINT_CLOSED answer to a request addressed to an endpoint whose connection ended",
            timeout=SETTLE,
            reqs=r,
        )
        _is_error(ans, "ENDPOINT_CLOSED", r, "the answer to a request to an endpoint that left")
        _check(_h(ans).get("source") == SYSTEM, r, f"ENDPOINT_CLOSED comes from {_h(ans).get('source')!r}")
        dead = [d for d in _dead_letters(b, y, x, r) if d.get("reason") == "ENDPOINT_CLOSED"]
        ids = [d.get("message", {}).get("header", {}).get("id") for d in dead]
        _check(
            ids[:2] == [mid(e1), mid(e2)],
            r,
            f"ENDPOINT_CLOSED dead letters of the endpoint: {ids}, not the copy in flight, then the queued",
        )
        _check(mid(qy) in ids, r, "the request queued to the endpoint is no ENDPOINT_CLOSED dead letter")
        late = message("Response", y, x, {"late": True}, correlation_id=mid(qx))
        b.send(late)
        b.op(y, "ping", r)
        unmatched = [d for d in _dead_letters(b, y, x, r) if d.get("reason") == "UNMATCHED_RESPONSE"]
        _check(
            [d.get("message", {}).get("header", {}).get("id") for d in unmatched] == [mid(late)],
            r,
            "the response to the request of an endpoint that left is no UNMATCHED_RESPONSE dead letter "
            "(its outstanding request was not cancelled)",
        )
        b.op(x, "register", r, window=8)  # its id is free again, with no subscription
        pub = message("Event", y, f"topic:{topic}", {"p": 1})
        b.send(pub)
        b.op(y, "ping", r)
        b.absent(lambda m: _h(m).get("id") == mid(pub), "a subscription of an endpoint that left was kept", r)
        b.op(x, "unregister", r)
        b.op(y, "unregister", r)


def check_answer_acks(address: str, multi: bool) -> None:
    """NODE-010: register takes answer_acks (a boolean, false when absent, anything else refused
    with INVALID_OPERATION) and echoes it; an endpoint registered with answer_acks = true that
    answers a Request copy in flight to it acknowledges that copy — the window opens, the copy is
    no longer pending, an acknowledgement of it afterwards is refused — also when the bus refuses
    the answer (NO_ROUTE), but not when the node refuses it before the bus (bus.reply); without
    answer_acks an answer acknowledges nothing."""
    r = "NODE-010"
    with _open(address, r) as w:
        asker, fast, slow = uid("ask"), uid("aa"), uid("plain")
        got = w.op(slow, "register", r, window=4)
        _check(
            isinstance(got, dict) and got.get("answer_acks") is False,
            r,
            f"register without answer_acks answered {got!r}, not answer_acks false",
        )
        _is_error(
            w.call(control(fast, "register", window=1, answer_acks="yes"), r),
            "INVALID_OPERATION",
            r,
            "register with answer_acks that is not a boolean",
        )
        got = w.op(fast, "register", r, window=1, answer_acks=True)
        _check(
            isinstance(got, dict) and got.get("answer_acks") is True,
            r,
            f"register with answer_acks true answered {got!r}",
        )
        w.op(asker, "register", r, window=8)
        qs = [message("Request", asker, fast, {"q": i}) for i in range(4)]
        w.send(*qs)
        w.copy_of(qs[0], r)
        w.send(message("Response", fast, asker, {"a": 0}, correlation_id=mid(qs[0])))
        w.copy_of(qs[1], r)  # window 1: answering the first opened it
        _is_error(
            w.call(ack(fast, mid(qs[0])), r), "INVALID_OPERATION", r, "an ack of a copy answered already"
        )
        nowhere = message("Response", fast, "topic:nowhere", {"a": 1}, correlation_id=mid(qs[1]))
        _is_error(w.call(nowhere, r), "NO_ROUTE", r, "a Response to a topic")
        w.copy_of(qs[2], r)  # the refused answer acknowledged the copy all the same
        _is_error(
            w.call(ack(fast, mid(qs[1])), r),
            "INVALID_OPERATION",
            r,
            "an ack of a copy whose answer was refused",
        )
        flagged = message(
            "Response", fast, asker, {"a": 2}, correlation_id=mid(qs[2]), metadata={REPLY: True}
        )
        _is_error(w.call(flagged, r), "INVALID_OPERATION", r, "an answer carrying bus.reply")
        w.absent(has_id(mid(qs[3])), "an answer refused before the bus acknowledged its request copy", r)
        w.send(ack(fast, mid(qs[2])))  # still in flight: accepted, no answer
        w.copy_of(qs[3], r)
        w.send(ack(fast, mid(qs[3])))
        q = message("Request", asker, slow, {"q": "plain"})
        w.send(q)
        w.copy_of(q, r)
        w.send(message("Response", slow, asker, {"a": "plain"}, correlation_id=mid(q)))
        w.op(asker, "ping", r)
        stats = w.op(asker, "stats", r).get("stats", {})
        pending = stats.get("pending_by_endpoint", {})
        _check(
            pending.get(fast) == 0,
            r,
            f"{pending.get(fast)} copies pending at the answer_acks endpoint, not 0",
        )
        _check(
            pending.get(slow) == 1,
            r,
            f"without answer_acks an answer acknowledged the copy ({pending.get(slow)} pending, not 1)",
        )
        w.send(ack(slow, mid(q)))
        for e in (asker, fast, slow):
            w.op(e, "unregister", r)


#: The checks, by name; :data:`MULTI_ONLY` need several connections to one node.
CHECKS: dict[str, NodeCheck] = {
    "connections": check_connections,
    "codecs": check_codecs,
    "control_ops": check_control_ops,
    "answer_form": check_answer_form,
    "submissions": check_submissions,
    "order": check_order,
    "window": check_window,
    "answers": check_answers,
    "connection_end": check_connection_end,
    "answer_acks": check_answer_acks,
}
MULTI_ONLY: frozenset[str] = frozenset({"connection_end"})


def requirements_of(check: Callable[..., None]) -> tuple[str, ...]:
    """The requirement ids a check verifies: the ids its docstring begins with."""
    head = (check.__doc__ or "").split(":", 1)[0]
    return tuple(re.findall(r"\bNODE-\d{3}\b", head))


def run_checks(address: str, names: Iterable[str] | None = None, *, multi: bool = True) -> dict[str, str]:
    """Run checks against ``address``; return ``{name: ""}`` for a pass, else the failure."""
    out: dict[str, str] = {}
    for name in names or CHECKS:
        if name in MULTI_ONLY and not multi:
            continue
        try:
            CHECKS[name](address, multi)
            out[name] = ""
        except AssertionError as e:
            out[name] = str(e) or "failed"
        except NotOffered as e:
            out[name] = f"not offered: {e}"
    return out
