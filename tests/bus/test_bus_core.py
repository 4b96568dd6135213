"""Unit tests of the sans-I/O bus core (spec/bus.md), on a manual clock."""

from __future__ import annotations

from typing import Any

import pytest
from bus_support import SEC, T0, Bus

import symphony_ipc as s
from symphony_ipc.bus import BusConfig, BusCore, Rule, check_size, dead_letter_to_data
from symphony_ipc.bus._core import MAX_MESSAGE_SIZE

EV, REQ, RESP, ERR = s.MessageType.EVENT, s.MessageType.REQUEST, s.MessageType.RESPONSE, s.MessageType.ERROR


def code_of(fn: Any, *args: Any, **kw: Any) -> str:
    with pytest.raises(s.ProtocolError) as info:
        fn(*args, **kw)
    return info.value.code.value


# ------------------------------------------------------------------------------ endpoints (BUS-002, -038)


@pytest.mark.parametrize("name", ["topic:x", "bus:x", "bus:broadcast", "", " a", "é", "a" * 129, "*"])
def test_reserved_and_invalid_endpoint_ids_are_refused(name: str) -> None:
    assert code_of(Bus().core.register, name) == "INVALID_ENDPOINT_ID"


def test_register_twice_and_unregister_unknown_are_invalid_operations() -> None:
    b = Bus()
    b.register("a")
    assert code_of(b.core.register, "a") == "INVALID_OPERATION"
    assert code_of(b.core.unregister, "zz") == "INVALID_OPERATION"
    assert code_of(b.core.subscribe, "zz", "t") == "INVALID_OPERATION"
    assert code_of(b.core.subscribe, "a", "bad topic") == "INVALID_ENDPOINT_ID"
    assert code_of(b.core.subscribe, "a", "x" * 123) == "INVALID_ENDPOINT_ID"
    b.core.subscribe("a", "x" * 122)


def test_config_out_of_range_is_invalid_operation() -> None:
    for bad in ({"max_pending": 0}, {"max_attempts": 0}, {"dlq_max": -1}, {"request_timeout_ns": -1}):
        assert code_of(BusConfig, **bad) == "INVALID_OPERATION"
    BusConfig(dlq_max=0, history_max=0, backpressure_timeout_ns=0, request_timeout_ns=0)


# ------------------------------------------------------------------------------ patterns (BUS-009..014)


def test_direct_publish_broadcast() -> None:
    b = Bus()
    b.register("a", "b", "c")
    b.core.subscribe("a", "t")
    b.core.subscribe("b", "t")
    b.core.subscribe("b", "t")  # idempotent
    b.send("a", "b", "direct")
    b.send("a", "topic:t", "pub")  # the publisher is subscribed: it gets its own message
    b.send("a", "bus:broadcast", "all")  # not to the sender
    b.core.pump()
    assert b.rec.of("a") == ["pub"]
    assert b.rec.of("b") == ["direct", "pub", "all"]
    assert b.rec.of("c") == ["all"]
    st = b.core.stats()
    assert (st.accepted, st.delivered, st.per_topic, st.per_sender) == (3, 5, {"t": 1}, {"a": 3})


def test_publish_without_subscribers_and_lonely_broadcast_are_accepted() -> None:
    b = Bus()
    b.register("a")
    b.send("a", "topic:nobody")
    b.send("a", "bus:broadcast")
    st = b.core.stats()
    assert (st.accepted, st.rejected, st.pending, st.dead_lettered) == (2, 0, 0, 0)


@pytest.mark.parametrize(
    ("mtype", "source", "target", "requirement"),
    [
        (EV, "a", "ghost", "BUS-009"),
        (EV, "a", "bus:nowhere", "BUS-001"),
        (REQ, "a", "topic:t", "BUS-012"),
        (REQ, "a", "bus:broadcast", "BUS-012"),
        (REQ, "ghost", "a", "BUS-019"),
        (REQ, "a", "ghost", "BUS-019"),
    ],
)
def test_no_route(mtype: s.MessageType, source: str, target: str, requirement: str) -> None:
    b = Bus()
    b.register("a")
    m = b.msg(source, target, mtype=mtype)
    assert code_of(b.core.submit, m) == "NO_ROUTE", requirement
    st = b.core.stats()
    assert (st.accepted, st.rejected, st.outstanding_requests, b.core.history()) == (0, 1, 0, [])  # BUS-007


def test_response_to_topic_is_no_route() -> None:
    b = Bus()
    b.register("a")
    m = b.msg("a", "topic:t", mtype=RESP, correlation_id=s.new_id())
    assert code_of(b.core.submit, m) == "NO_ROUTE"


def test_unsubscribe_applies_to_later_messages_only() -> None:
    b = Bus()
    b.register("a", "b")
    b.core.subscribe("b", "t")
    b.send("a", "topic:t", 1)
    b.core.unsubscribe("b", "t")
    b.core.unsubscribe("b", "t")  # nothing subscribed: no-op
    b.send("a", "topic:t", 2)
    b.core.pump()
    assert b.rec.of("b") == [1]


def test_each_endpoint_gets_one_copy() -> None:
    b = Bus()
    b.register("a", "b")
    b.core.subscribe("b", "t")
    b.core.add_rule(Rule("r1", "b"))
    b.core.add_rule(Rule("r2", "b", topic="t"))
    b.send("a", "topic:t", "x")
    b.send("a", "b", "y")
    b.core.pump()
    assert b.rec.of("b") == ["x", "y"]


# ------------------------------------------------------------------------------ rules (BUS-015..018)


def test_rules_priority_final_disabled_and_filters() -> None:
    b = Bus()
    b.register("a", "b", "tap1", "tap2", "tap3")
    b.core.add_rule(Rule("low", "tap3", priority=0))
    b.core.add_rule(Rule("stop", "tap1", priority=5, final=True, source="a*"))
    b.core.add_rule(Rule("off", "tap2", priority=9, enabled=False))
    b.send("a", "b", 1)  # stop matches (prefix) and is final: low is not evaluated
    b.send("b", "a", 2)  # stop does not match: low does
    b.core.enable_rule("off", True)
    b.send("b", "a", 3)  # off now matches first, then low
    b.core.pump()
    assert (b.rec.of("tap1"), b.rec.of("tap2"), b.rec.of("tap3")) == ([1], [3], [2, 3])


def test_rule_filters_on_type_target_and_topic() -> None:
    b = Bus()
    b.register("a", "b", "tap")
    b.core.add_rule(Rule("r", "tap", message_type="Heartbeat", target="topic:*", topic="sys*"))
    b.send("a", "topic:sys.load", 1, mtype=s.MessageType.HEARTBEAT)
    b.send("a", "topic:sys.load", 2)  # an Event
    b.send("a", "topic:other", 3, mtype=s.MessageType.HEARTBEAT)
    b.send("a", "b", 4, mtype=s.MessageType.HEARTBEAT)  # no topic: a topic filter never matches
    b.core.pump()
    assert b.rec.of("tap") == [1]


def test_rule_as_fallback_route_and_stale_destination() -> None:
    b = Bus()
    b.register("a", "fallback")
    b.core.add_rule(Rule("catch", "fallback", target="ghost"))
    b.core.add_rule(Rule("stale", "gone"))
    b.send("a", "ghost", "x")  # no endpoint ghost, but a rule routes it
    b.core.pump()
    assert b.rec.of("fallback") == ["x"]
    assert b.dlq() == [("x", "NO_ROUTE", 0, "gone")]
    b.core.remove_rule("catch")
    assert code_of(b.send, "a", "ghost", "y") == "NO_ROUTE"  # the stale rule is no route
    assert len(b.dlq()) == 1


def test_rule_ids_and_destinations_are_checked() -> None:
    b = Bus()
    b.core.add_rule(Rule("r", "x"))
    assert code_of(b.core.add_rule, Rule("r", "y")) == "INVALID_OPERATION"
    assert code_of(b.core.remove_rule, "nope") == "INVALID_OPERATION"
    assert code_of(b.core.enable_rule, "nope", True) == "INVALID_OPERATION"
    assert code_of(b.core.add_rule, Rule("q", "not valid")) == "INVALID_ENDPOINT_ID"
    assert code_of(Rule.from_dict, {"id": "z", "destination": "x", "colour": 1}) == "INVALID_OPERATION"
    r = Rule("k", "x", priority=3, final=True, topic="t*")
    assert Rule.from_dict(r.to_dict()) == r


# ------------------------------------------------------------------------------ priority (BUS-027, -028)


def test_priority_then_fifo_and_retries_go_to_the_back() -> None:
    b = Bus(max_attempts=3)
    b.register("a")
    b.register("b")
    for p, prio in [("n1", 0), ("h1", 100), ("n2", 0), ("c", 1000), ("h2", 100), ("l", -100)]:
        b.send("a", "b", p, priority=prio)
    b.core.pump()
    assert b.rec.of("b") == ["c", "h1", "h2", "n1", "n2", "l"]
    b.rec.log.clear()
    b.send("a", "b", "x1")
    b.send("a", "b", "x2")
    b.rec.failing["b"] = 1
    b.core.deliver("b")
    assert [(p, n) for e, p, n in b.rec.log] == [("x2", 1), ("x1", 2)]


# ------------------------------------------------------------------------------ TTL (BUS-029)


def test_expired_at_submission_is_refused_and_the_boundary_is_exact() -> None:
    b = Bus()
    b.register("a", "b")
    old = s.MessageBuilder(b.clock).message_type(EV).source("a").target("b").ttl(s.Ttl(1, 0))
    m = old.timestamp(T0 - SEC).build()  # age == ttl: not expired (TTL-002)
    b.core.submit(m)
    m2 = old.timestamp(T0 - SEC - 1).build()
    assert code_of(b.core.submit, m2) == "TTL_EXPIRED"
    assert b.dlq() == []  # refused, not dead-lettered


def test_expired_while_pending_is_dead_lettered_never_delivered() -> None:
    b = Bus()
    b.register("a", "b")
    b.send("a", "b", "short", ttl=s.Ttl(1, 0))
    b.send("a", "b", "long", ttl=s.Ttl(5, 0))
    b.clock.advance(SEC)
    b.core.deliver("b")
    b.send("a", "b", "short2", ttl=s.Ttl(0, 0))
    b.clock.advance(1)
    b.core.deliver("b")
    assert b.rec.of("b") == ["short", "long"]
    assert b.dlq() == [("short2", "TTL_EXPIRED", 0, "b")]


# ------------------------------------------------------------------------------ acks, retries, isolation


def test_retries_then_handler_failed_with_attempts() -> None:
    b = Bus(max_attempts=3)
    b.register("a", "b", "c")
    b.core.subscribe("b", "t")
    b.core.subscribe("c", "t")
    b.rec.failing["b"] = 5
    b.send("a", "topic:t", "m")
    b.send("a", "b", "next")
    b.core.pump()
    assert b.rec.of("c") == ["m"]  # BUS-032: the other recipient is not affected
    assert b.rec.of("b") == ["next"]  # "next" failed twice (5 = 3 for m + 2), then went through
    assert [x[2] for x in b.rec.log if x[1] == "next"] == [3]
    assert b.dlq() == [("m", "HANDLER_FAILED", 3, "b")]
    st = b.core.stats()
    assert (st.failed, st.delivered, st.dead_lettered, st.pending) == (5, 2, 1, 0)


def test_pull_mode_take_settle_and_receive() -> None:
    b = Bus(max_attempts=2)
    b.register("a")
    b.register("p", handler=False)
    b.send("a", "p", 1)
    b.send("a", "p", 2)
    d = b.core.take("p")
    assert d is not None
    assert (d.message.payload, d.attempt) == (1, 1)
    assert b.core.pending("p") == 2  # in flight counts
    b.core.settle("p", d.message.header.id, False)
    m = b.core.receive("p")  # taking acknowledges
    assert m is not None
    assert m.payload == 2
    d = b.core.take("p")
    assert d is not None
    assert (d.message.payload, d.attempt) == (1, 2)
    b.core.settle("p", d.message.header.id, False)
    assert b.core.take("p") is None
    assert b.dlq() == [(1, "HANDLER_FAILED", 2, "p")]
    assert code_of(b.core.settle, "p", d.message.header.id, True) == "INVALID_OPERATION"
    assert code_of(b.core.deliver, "p") == "INVALID_OPERATION"  # no handler


# ------------------------------------------------------------------------------ backpressure (BUS-034..036)


def test_full_endpoint_refuses_and_nothing_is_enqueued() -> None:
    b = Bus(max_pending=2)
    b.register("a", "b", "c")
    b.core.subscribe("b", "t")
    b.core.subscribe("c", "t")
    b.send("a", "c", 1)
    b.send("a", "c", 2)
    with pytest.raises(s.ProtocolError) as info:
        b.send("a", "topic:t", 3)  # c is full: the publish is refused as a whole
    assert info.value.code.value == "BACKPRESSURE"
    assert info.value.details["full"] == ["c"]
    assert b.core.pending("b") == 0
    b.core.deliver("c")
    b.send("a", "topic:t", 3)
    st = b.core.stats()
    assert (st.accepted, st.rejected, st.pending) == (3, 1, 2)


def test_expired_copies_make_room_first() -> None:
    b = Bus(max_pending=1)
    b.register("a", "b")
    b.send("a", "b", "stale", ttl=s.Ttl(1, 0))
    b.clock.advance(2 * SEC)
    b.send("a", "b", "fresh")  # the stale copy is swept to make room
    assert b.dlq() == [("stale", "TTL_EXPIRED", 0, "b")]
    b.core.deliver("b")
    assert b.rec.of("b") == ["fresh"]


def test_a_request_reserves_its_answer_slot() -> None:
    b = Bus(max_pending=1)
    b.register("req", "srv", "x")
    r = b.send("req", "srv", "q", mtype=REQ)
    assert b.core.load("req") == 1
    assert code_of(b.send, "x", "req", "ev") == "BACKPRESSURE"  # the slot is the answer's
    b.core.deliver("srv")
    b.send("srv", "req", "answer", mtype=RESP, correlation_id=r.header.id)  # takes the slot
    assert b.core.load("req") == 1
    assert b.core.pending("req") == 1
    b.core.deliver("req")
    assert b.rec.of("req") == ["answer"]


# ------------------------------------------------------------------------ request/response (BUS-019..026)


def test_answer_unmatched_and_late_responses() -> None:
    b = Bus(request_timeout_ns=SEC)
    b.register("c", "s", "other")
    r = b.send("c", "s", "q", mtype=REQ)
    assert b.core.stats().outstanding_requests == 1
    b.send("s", "other", "wrong target", mtype=RESP, correlation_id=r.header.id)
    b.send("s", "c", "ok", mtype=RESP, correlation_id=r.header.id)
    b.send("s", "c", "twice", mtype=RESP, correlation_id=r.header.id)
    b.send("s", "c", "unknown", mtype=RESP, correlation_id=s.new_id())
    b.core.pump()
    assert b.rec.of("c") == ["ok"]
    assert [x[:2] for x in b.dlq()] == [
        ("wrong target", "UNMATCHED_RESPONSE"),
        ("twice", "UNMATCHED_RESPONSE"),
        ("unknown", "UNMATCHED_RESPONSE"),
    ]
    assert b.core.stats().outstanding_requests == 0


def test_timeout_boundary_and_the_error_message() -> None:
    b = Bus(request_timeout_ns=SEC)
    b.register("c", "s")
    r = b.send("c", "s", "q", mtype=REQ, priority=100)
    b.clock.advance(SEC)
    assert b.core.poll() == 0  # now - accepted == timeout: not yet (BUS-024)
    b.clock.advance(1)
    assert b.core.poll() == 1
    b.core.deliver("c")
    (name, payload, _attempt) = b.rec.log[0]
    assert name == "c"
    assert payload["code"] == "REQUEST_TIMEOUT"
    assert (payload["category"], payload["recoverable"]) == ("timeout", True)
    b.send("s", "c", "late", mtype=RESP, correlation_id=r.header.id)
    assert b.dlq()[-1][:2] == ("late", "UNMATCHED_RESPONSE")
    assert b.core.stats().delivered == 1


def test_timeout_error_message_shape() -> None:
    b = Bus()
    b.register("c", "s")
    got: list[s.Message | None] = []
    r = b.msg("c", "s", mtype=REQ, priority=7)
    b.core.submit(r, timeout_ns=0, waiter=got.append)
    b.clock.advance(1)
    b.core.poll()
    (m,) = got
    assert m is not None
    h = m.header
    assert (h.message_type, h.source, h.target, h.correlation_id, h.priority, h.ttl) == (
        ERR,
        "bus:system",
        "c",
        r.header.id,
        7,
        None,
    )
    assert (m.metadata, h.timestamp.ns) == ({}, T0 + 1)
    assert s.message_from_data(s.message_to_data(m)) == m  # a valid envelope


def test_timeout_metadata_and_invalid_values() -> None:
    b = Bus(request_timeout_ns=100 * SEC)
    b.register("c", "s")
    b.send("c", "s", mtype=REQ, metadata={"bus.timeout_ns": 5})
    b.clock.advance(6)
    assert b.core.poll() == 1
    for bad in (-1, 2**63, "5", 1.5, True):
        assert code_of(b.send, "c", "s", mtype=REQ, metadata={"bus.timeout_ns": bad}) == "INVALID_OPERATION"


def test_timeouts_fire_in_deadline_then_acceptance_order() -> None:
    b = Bus()
    b.register("c", "s")
    ids = []
    for t in (3, 1, 3, 2):
        ids.append(b.send("c", "s", mtype=REQ, metadata={"bus.timeout_ns": t}).header.id)
    b.clock.advance(10)
    b.core.poll()
    b.core.deliver("c")
    order = [p["details"]["request_id"] for _, p, _ in b.rec.log]
    assert order == [ids[1], ids[3], ids[0], ids[2]]


def test_error_answers_a_request_and_unmatched_error_is_routed() -> None:
    b = Bus()
    b.register("c", "s")
    r = b.send("c", "s", mtype=REQ)
    b.send("s", "c", "err", mtype=ERR, correlation_id=r.header.id)
    b.send("s", "c", "plain error", mtype=ERR, correlation_id=r.header.id)  # answers nothing now
    b.core.deliver("c")
    assert b.rec.of("c") == ["err", "plain error"]
    assert b.core.stats().outstanding_requests == 0


# ------------------------------------------------------------------------------ leaving (BUS-037, -038)


def test_leaving_endpoint() -> None:
    b = Bus()
    b.register("c", "s", "x")
    b.core.subscribe("s", "t")
    r_to_s = b.send("c", "s", mtype=REQ)
    b.send("s", "x", mtype=REQ)  # s's own request: cancelled
    b.send("c", "s", "low", priority=-100)
    b.send("c", "s", "high", priority=100)
    b.core.unregister("s")
    assert [x[:2] for x in b.dlq()] == [
        ("high", "ENDPOINT_CLOSED"),
        (None, "ENDPOINT_CLOSED"),
        ("low", "ENDPOINT_CLOSED"),
    ]
    assert b.core.subscribers("t") == []
    assert b.core.stats().outstanding_requests == 0
    b.core.deliver("c")
    ((_, payload, _),) = b.rec.log
    assert payload["code"] == "ENDPOINT_CLOSED"
    assert payload["details"]["request_id"] == r_to_s.header.id
    b.register("s")
    assert b.core.pending("s") == 0
    assert b.core.subscribers("t") == []


def test_handler_that_unregisters_its_endpoint() -> None:
    b = Bus()
    b.register("a")
    b.core.register("s", lambda m, a: b.core.unregister("s"))
    b.send("a", "s", 1)
    b.send("a", "s", 2)
    b.core.deliver("s")
    assert [x[:2] for x in b.dlq()] == [(1, "ENDPOINT_CLOSED"), (2, "ENDPOINT_CLOSED")]
    assert b.core.stats().delivered == 0


# ------------------------------------------------------------------------------ DLQ, history, stats


def test_dlq_evicts_oldest_and_counts() -> None:
    b = Bus(dlq_max=2)
    b.register("a")
    for i in range(4):
        b.core.add_rule(Rule(f"r{i}", f"gone{i}", priority=-i))
    b.send("a", "bus:broadcast", "m")
    assert [x[3] for x in b.dlq()] == ["gone2", "gone3"]
    st = b.core.stats()
    assert (st.dead_lettered, st.dlq_evicted) == (4, 2)
    entry = dead_letter_to_data(b.core.dead_letters()[0])
    assert set(entry) == {"message", "reason", "attempts", "recipient", "time"}
    assert entry["time"] == "2026-01-01T00:00:00Z"


def test_dlq_max_zero_and_shrinking_reconfiguration() -> None:
    b = Bus(dlq_max=0, history_max=0)
    b.register("a")
    b.core.add_rule(Rule("r", "gone"))
    b.send("a", "bus:broadcast")
    st = b.core.stats()
    assert (st.dead_lettered, st.dlq_evicted, b.core.dead_letters(), b.core.history()) == (1, 1, [], [])
    b.core.configure(BusConfig(dlq_max=5, history_max=5))
    b.send("a", "bus:broadcast", 1)
    b.send("a", "bus:broadcast", 2)
    b.core.configure(BusConfig(dlq_max=1, history_max=1))
    assert [x[0] for x in b.dlq()] == [2]
    assert b.core.stats().dlq_evicted == 2
    assert [m.payload for m in b.core.history()] == [2]


def test_history_is_bounded_and_in_acceptance_order() -> None:
    b = Bus(history_max=2)
    b.register("a", "b")
    for i in range(4):
        b.send("a", "b", i)
    assert [m.payload for m in b.core.history()] == [2, 3]


def test_stats_shape() -> None:
    b = Bus()
    b.register("a", "b")
    b.send("a", "b")
    assert b.core.stats().to_dict() == {
        "accepted": 1,
        "rejected": 0,
        "delivered": 0,
        "failed": 0,
        "dead_lettered": 0,
        "dlq_evicted": 0,
        "pending": 1,
        "outstanding_requests": 0,
        "per_topic": {},
        "per_sender": {"a": 1},
        "pending_by_endpoint": {"a": 0, "b": 1},
    }


# ------------------------------------------------------------------------------ receiver checks and size


def test_version_is_checked() -> None:
    b = Bus()
    b.register("a", "b")
    m = (
        s.MessageBuilder(b.clock)
        .message_type(EV)
        .source("a")
        .target("b")
        .version(s.ProtocolVersion(2, 0))
        .build()
    )
    assert code_of(b.core.submit, m) == "INVALID_PROTOCOL_VERSION"
    b.core.submit(
        s.MessageBuilder(b.clock)
        .message_type(EV)
        .source("a")
        .target("b")
        .version(s.ProtocolVersion(1, 9))
        .build()
    )


def test_size_limit_is_exact_on_every_path() -> None:
    b = Bus()
    b.register("a", "b")
    base = b.msg("a", "b", "")
    overhead = len(s.encode_json(base))
    at_limit = b.msg("a", "b", "x" * (MAX_MESSAGE_SIZE - overhead))
    assert len(s.encode_json(at_limit)) == MAX_MESSAGE_SIZE
    b.core.submit(at_limit)
    for mtype, target, extra in [
        (EV, "b", {}),
        (EV, "topic:t", {}),
        (EV, "bus:broadcast", {}),
        (REQ, "b", {}),
        (RESP, "a", {"correlation_id": s.new_id()}),
    ]:
        big = b.msg("a", target, "x" * (MAX_MESSAGE_SIZE - overhead + 1), mtype=mtype, **extra)
        assert code_of(b.core.submit, big) == "MESSAGE_TOO_LARGE", (mtype, target)
    meta_big = b.msg("a", "b", None, metadata={"k": "y" * MAX_MESSAGE_SIZE})
    assert code_of(b.core.submit, meta_big) == "MESSAGE_TOO_LARGE"


def test_check_size_agrees_with_the_encoder_for_odd_payloads() -> None:
    b = Bus()
    for payload in [None, 1.5, "é" * 10, {"a": [1, {"b": None}]}, "\u0000" * 3]:
        check_size(b.msg("a", "b", payload), limit=len(s.encode_json(b.msg("a", "b", payload))))
    with pytest.raises(s.MessageTooLarge):
        check_size(b.msg("a", "b", "x" * 3000), limit=1000)
    assert code_of(check_size, b.msg("a", "b", {"x": object()})) == "SERIALIZATION"


def test_core_without_arguments_uses_the_defaults() -> None:
    core = BusCore()
    assert core.config == BusConfig()
    assert (core.config.max_pending, core.config.dlq_max, core.config.max_attempts) == (10_000, 1000, 3)


def test_answered_requests_leave_no_timer_behind() -> None:
    """The timeout timer of an answered request is cancelled and the heap compacted: under a
    steady stream of requests it stays about the size of the outstanding ones, and a request
    that is not answered still times out (BUS-024)."""
    clock = s.ManualClock()
    core = BusCore(clock=clock)
    core.register("req")
    core.register("svc")
    answers: list[s.Message | None] = []
    for i in range(3000):
        request = s.new_message(REQ, "req", "svc", i, clock=clock)
        core.submit(request, waiter=answers.append, timeout_ns=10**9)
        d = core.take("svc")
        assert d is not None
        assert d.message is request
        core.settle("svc", request.header.id, True)
        core.submit(s.new_message(RESP, "svc", "req", i, correlation_id=request.header.id, clock=clock))
    assert [a.payload if a else None for a in answers] == list(range(3000))
    assert len(core._timers) <= 600
    late = s.new_message(REQ, "req", "svc", "late", clock=clock)
    core.submit(late, waiter=answers.append, timeout_ns=10**9)
    clock.advance(2 * 10**9)
    assert core.poll() == 1
    last = answers[-1]
    assert last is not None
    assert last.payload["code"] == "REQUEST_TIMEOUT"
