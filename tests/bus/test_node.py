"""The bus node (spec/bus.md section 14) and its client, in one process over Unix sockets.

Each test runs a :class:`BusNode` on a listener in a short temporary directory and talks to it
with :class:`BusClient` or with a raw connection (to see exactly what the node writes). Time is the
system clock: the few timeouts are short and only checked to fire, never measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import symphony_ipc as s
from symphony_ipc.bus import ACK_KEY, REPLY_KEY, BusClient, BusConfig, BusNode
from symphony_ipc.transport import connect, listen

EV, REQ, RESP, ERR = s.MessageType.EVENT, s.MessageType.REQUEST, s.MessageType.RESPONSE, s.MessageType.ERROR


def run(fn: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(fn(), 30))  # a safety net against a hang, not a timing


@contextlib.asynccontextmanager
async def node(**limits: Any) -> AsyncIterator[tuple[BusNode, str]]:
    limits.setdefault("backpressure_timeout_ns", 0)
    window = limits.pop("default_window", 16)
    directory = tempfile.mkdtemp(prefix="sy-node-", dir="/tmp")
    address = f"unix:{directory}/bus.sock"
    listener = await listen(address)
    n = BusNode(BusConfig(**limits), default_window=window)
    task = asyncio.create_task(n.serve(listener))
    try:
        yield n, address
    finally:
        await listener.close()
        await task
        shutil.rmtree(directory, ignore_errors=True)


class Raw:
    """A connection that speaks the node's wire protocol by hand."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @classmethod
    async def open(cls, address: str) -> Raw:
        return cls(await connect(address, codecs=("json",)))

    async def send(self, msg: s.Message) -> None:
        await self.conn.send_frame(s.encode(msg, "json"))

    async def recv(self, timeout: float = 5.0) -> s.Message:
        return s.decode(await self.conn.recv_frame(timeout), "json")

    async def control(self, source: str, op: str, **fields: Any) -> s.Message:
        req = s.new_message(REQ, source, "bus:system", {"op": op, **fields})
        await self.send(req)
        answer = await self.recv()
        assert answer.header.correlation_id == req.header.id
        assert answer.metadata == {REPLY_KEY: True}
        assert answer.header.source == "bus:system"
        assert answer.header.target == source
        return answer


def ack_of(endpoint: str, message_id: str) -> s.Message:
    return s.new_message(EV, endpoint, "bus:ack", None, correlation_id=message_id, metadata={ACK_KEY: True})


def payloads(msgs: list[s.Message]) -> list[Any]:
    return [m.payload for m in msgs]


# ---------------------------------------------------------------- patterns across connections


def test_publish_direct_and_broadcast_reach_other_connections_unchanged() -> None:
    """NODE-001, BUS-003: what a client submits arrives at the other client's endpoint unchanged."""

    async def main() -> None:
        async with node() as (_, address):
            a = await BusClient.connect(address, "a")
            b = await BusClient.connect(address, "b")
            await b.subscribe("news")
            sent = [
                await a.publish("news", {"n": 1}, confirm=True),
                await a.send(a.message("b", {"n": 2}, priority=5, metadata={"k": [1, 2]}), confirm=True),
                await a.send(a.message("bus:broadcast", {"n": 3}), confirm=True),
            ]
            got = [await b.receive(timeout=5) for _ in range(3)]
            assert sorted(got, key=lambda m: m.payload["n"]) == sent  # every member equal
            assert got[0].payload == {"n": 2}  # the highest priority first
            stats = await a.stats()
            assert stats["accepted"] == 3
            assert stats["delivered"] == 3
            assert stats["pending"] == 0
            await a.close()
            await b.close()

    run(main)


def test_control_answers_and_errors() -> None:
    """NODE-002, NODE-003: every control request is answered, with the spec's code on a fault."""

    async def main() -> None:
        async with node() as (_, address):
            raw = await Raw.open(address)
            ok = await raw.control("r1", "register", window=3)
            assert ok.header.message_type is RESP
            assert ok.payload == {"endpoint": "r1", "window": 3, "answer_acks": False}
            cases: list[tuple[str, str, dict[str, Any], str]] = [
                ("r1", "register", {}, "INVALID_OPERATION"),  # registered already (BUS-038)
                ("topic:x", "register", {}, "INVALID_ENDPOINT_ID"),  # reserved (BUS-002)
                ("r2", "subscribe", {"topic": "t"}, "INVALID_OPERATION"),  # not this connection's
                ("r1", "subscribe", {"topic": "bad topic"}, "INVALID_ENDPOINT_ID"),
                ("r1", "subscribe", {}, "INVALID_OPERATION"),
                ("r1", "window", {"window": -1}, "INVALID_OPERATION"),
                ("r1", "frobnicate", {}, "INVALID_OPERATION"),
            ]
            for source, op, fields, code in cases:
                answer = await raw.control(source, op, **fields)
                assert answer.header.message_type is ERR, (op, answer.payload)
                assert answer.payload["code"] == code, (op, answer.payload)
                assert (answer.payload["category"], answer.payload["recoverable"]) == s.ERROR_TABLE[
                    s.ErrorCode(code)
                ]
            assert (await raw.control("r1", "subscribe", topic="t")).payload == {}
            assert (await raw.control("r1", "ping")).payload == {}
            assert (await raw.control("anyone", "stats")).payload["stats"]["pending_by_endpoint"] == {"r1": 0}
            # an Event to bus:system is no control request
            ev = s.new_message(EV, "r1", "bus:system", {"op": "ping"})
            await raw.send(ev)
            answer = await raw.recv()
            assert answer.header.correlation_id == ev.header.id
            assert answer.payload["code"] == "INVALID_OPERATION"
            assert (await raw.control("r1", "unregister")).payload == {}
            assert (await raw.control("r1", "unregister")).payload["code"] == "INVALID_OPERATION"
            await raw.conn.close()

    run(main)


def test_refusals_are_answered_and_the_connection_goes_on() -> None:
    """NODE-004: a foreign source, a bus.reply key, a bus refusal and garbage each get an Error;
    an accepted submission gets nothing."""

    async def main() -> None:
        async with node(max_pending=1) as (_, address):
            raw = await Raw.open(address)
            await raw.control("me", "register", window=0)
            await raw.control("me", "subscribe", topic="t")
            cases = [
                (s.new_message(EV, "someone", "me", 1), "INVALID_OPERATION"),
                (s.new_message(EV, "me", "me", 2, metadata={REPLY_KEY: True}), "INVALID_OPERATION"),
                (s.new_message(EV, "me", "nobody", 3), "NO_ROUTE"),
                (s.new_message(REQ, "me", "topic:t", 4), "NO_ROUTE"),
            ]
            for msg, code in cases:
                await raw.send(msg)
                answer = await raw.recv()
                assert answer.header.correlation_id == msg.header.id
                assert answer.header.message_type is ERR
                assert answer.payload["code"] == code
                assert answer.metadata == {REPLY_KEY: True}
            await raw.send(s.new_message(EV, "me", "topic:t", 5))  # accepted: me holds 1 of 1
            full = s.new_message(EV, "me", "topic:t", 6)
            await raw.send(full)
            answer = await raw.recv()
            assert (answer.header.correlation_id, answer.payload["code"]) == (full.header.id, "BACKPRESSURE")
            assert answer.payload["details"]["full"] == ["me"]
            await raw.conn.send_frame(b"{not json")
            garbage = await raw.recv()
            assert garbage.header.target == "bus:unknown"
            assert garbage.header.correlation_id is None
            assert garbage.payload["code"] == "SERIALIZATION"
            assert (await raw.control("me", "ping")).payload == {}  # still open
            await raw.conn.close()

    run(main)


def test_window_zero_keeps_priority_order_at_the_node() -> None:
    """NODE-006, BUS-027: copies queued while the subscriber is not reading come out highest
    priority first, arrival order within a priority, once it starts reading."""

    async def main() -> None:
        async with node() as (_, address):
            sub = await BusClient.connect(address, "sub")
            await sub.subscribe("t")
            pub = await BusClient.connect(address, "pub")
            prios = [0, 100, -100, 100, 0, 1000, -1000, 0, 100, -100]
            for i, p in enumerate(prios):
                await pub.publish("t", i, priority=p)
            await pub.ping()
            assert (await pub.stats())["pending_by_endpoint"]["sub"] == len(prios)
            got = [await sub.receive(timeout=5) for _ in prios]
            want = sorted(range(len(prios)), key=lambda i: -prios[i])  # stable: FIFO in a level
            assert payloads(got) == want
            await sub.close()
            await pub.close()

    run(main)


def test_the_window_bounds_copies_in_flight() -> None:
    """NODE-006: with window 2 the node sends two copies and keeps the rest until acknowledged."""

    async def main() -> None:
        async with node() as (_, address):
            raw = await Raw.open(address)
            await raw.control("w", "register", window=2)
            pub = await BusClient.connect(address, "p")
            for i in range(5):
                await pub.send(pub.message("w", i))
            await pub.ping()
            first = [await raw.recv(), await raw.recv()]
            assert payloads(first) == [0, 1]
            with pytest.raises(s.TransportTimeout):
                await raw.conn.recv_frame(0.2)  # nothing more until an acknowledgement
            stats = await pub.stats()
            assert stats["pending_by_endpoint"]["w"] == 5
            assert stats["delivered"] == 0
            for m in first:
                ack = s.new_message(
                    EV, "w", "bus:ack", None, correlation_id=m.header.id, metadata={ACK_KEY: True}
                )
                await raw.send(ack)
            assert payloads([await raw.recv(), await raw.recv()]) == [2, 3]
            bogus = s.new_message(
                EV, "w", "bus:ack", None, correlation_id=s.new_id(), metadata={ACK_KEY: True}
            )
            await raw.send(bogus)
            refusal = await raw.recv()
            assert refusal.header.correlation_id == bogus.header.id
            assert refusal.payload["code"] == "INVALID_OPERATION"
            assert (await pub.stats())["delivered"] == 2
            await raw.conn.close()
            await pub.close()

    run(main)


def test_request_response_timeout_and_a_failing_handler() -> None:
    """NODE-007, BUS-024, BUS-031: answers reach the requester; no answer times out; a handler
    that raises is retried, then dead-lettered."""

    async def main() -> None:
        async with node(max_attempts=2) as (_, address):
            svc = await BusClient.connect(address, "svc")
            calls: list[Any] = []

            def handle(m: s.Message) -> Any:
                calls.append(m.payload)
                if m.payload == "fail":
                    raise RuntimeError("boom")
                return {"echo": m.payload}

            server = asyncio.create_task(svc.serve(handle))
            cli = await BusClient.connect(address, "cli")
            answer = await cli.request("svc", "hi", timeout=5)
            assert answer.header.message_type is RESP
            assert answer.payload == {"echo": "hi"}
            assert answer.header.source == "svc"
            assert answer.header.target == "cli"
            with pytest.raises(s.RequestTimeout):
                await cli.request("svc", "fail", timeout=0.2)
            assert calls.count("fail") == 2  # max_attempts
            dead = await cli.dead_letters()
            assert [(d["reason"], d["attempts"], d["recipient"]) for d in dead] == [
                ("HANDLER_FAILED", 2, "svc")
            ]
            with pytest.raises(s.NoRoute):
                await cli.request("nobody", 1, timeout=1)
            server.cancel()
            await asyncio.gather(server, return_exceptions=True)
            await svc.close()
            await cli.close()

    run(main)


def test_answers_bypass_a_full_window() -> None:
    """NODE-007: a requester whose window is full of unread copies still gets its answer."""

    async def main() -> None:
        async with node() as (_, address):
            svc = await BusClient.connect(address, "svc")
            server = asyncio.create_task(svc.serve(lambda m: m.payload))
            cli = await BusClient.connect(address, "cli", prefetch=1)
            await cli.set_window(1)
            for i in range(3):
                await svc.send(svc.message("cli", i))  # one in flight, two queued at the node
            await svc.ping()
            answer = await cli.request("svc", "q", timeout=5)
            assert answer.payload == "q"
            assert payloads([await cli.receive(timeout=5) for _ in range(3)]) == [0, 1, 2]
            server.cancel()
            await asyncio.gather(server, return_exceptions=True)
            await svc.close()
            await cli.close()

    run(main)


def test_a_broken_connection_takes_its_endpoint_out() -> None:
    """NODE-008, BUS-037: in-flight and queued copies become ENDPOINT_CLOSED dead letters, in
    that order, and a request addressed to the endpoint is answered ENDPOINT_CLOSED."""

    async def main() -> None:
        async with node() as (_, address):
            raw = await Raw.open(address)
            await raw.control("gone", "register", window=1)
            other = await BusClient.connect(address, "other")
            for i in range(3):
                await other.send(other.message("gone", i, priority=i))
            await other.ping()
            flying = (await raw.recv()).payload  # in flight, never acknowledged
            waiting = asyncio.create_task(other.request("gone", "q", timeout=10))
            await other.ping()
            raw.conn.abort()  # broken, as if the process died
            with pytest.raises(s.EndpointClosed):
                await waiting
            dead = await other.dead_letters()
            reasons = [(d["message"]["payload"], d["reason"], d["recipient"]) for d in dead]
            # in flight first, then the queue in delivery order: message i has priority i, the
            # request 'q' priority 0 and the latest arrival
            queue = [(i, i, i) for i in range(3) if i != flying] + [(0, 3, "q")]
            queued = [p for _, _, p in sorted(queue, key=lambda x: (-x[0], x[1]))]
            assert reasons == [(p, "ENDPOINT_CLOSED", "gone") for p in [flying, *queued]]
            stats = await other.stats()
            assert "gone" not in stats["pending_by_endpoint"]
            assert stats["outstanding_requests"] == 0
            # the id is free again (BUS-038)
            again = await BusClient.connect(address, "gone")
            await again.close()
            await other.close()

    run(main)


def test_a_sender_waits_for_room_and_its_later_frames_wait_behind_it() -> None:
    """NODE-005, BUS-035: with a backpressure timeout the node parks the connection's later
    frames behind a waiting submission, and accepts both once there is room, in order."""

    async def main() -> None:
        async with node(max_pending=1, backpressure_timeout_ns=5 * 1_000_000_000) as (_, address):
            sink = await BusClient.connect(address, "sink", prefetch=1)
            src = await BusClient.connect(address, "src")
            for i in range(3):
                await src.send(src.message("sink", i))  # 0 fits; 1 waits; 2 waits behind it
            pinged = asyncio.create_task(src.ping())
            await asyncio.sleep(0.1)
            assert not pinged.done()  # the ping is parked behind the waiting submission
            got = [await sink.receive(timeout=5) for _ in range(3)]
            assert payloads(got) == [0, 1, 2]
            await pinged
            assert not src.refused
            await sink.close()
            await src.close()

    run(main)


def test_a_sender_that_waits_in_vain_gets_backpressure() -> None:
    """BUS-035, NODE-004: the wait ends without room: BACKPRESSURE, and the next frame goes on."""

    async def main() -> None:
        async with node(max_pending=1, backpressure_timeout_ns=100_000_000) as (_, address):
            sink = await BusClient.connect(address, "sink")
            src = await BusClient.connect(address, "src")
            await src.send(src.message("sink", 0), confirm=True)
            with pytest.raises(s.Backpressure):
                await src.send(src.message("sink", 1), confirm=True)
            assert (await src.stats())["rejected"] == 1
            await sink.close()
            await src.close()

    run(main)


def test_nothing_is_left_behind() -> None:
    """The node's listener removes its socket; closing the node ends its connections."""

    async def main() -> None:
        async with node() as (n, address):
            c = await BusClient.connect(address, "c")
            path = address.partition(":")[2]
            assert os.path.exists(path)
        assert not os.path.exists(path)
        assert not n.connections
        with pytest.raises(s.EndpointClosed):
            await c.receive(timeout=5)
        await c.close()

    run(main)


def test_closing_right_after_receiving_keeps_the_acknowledgement() -> None:
    """BUS-030: a copy the application took is delivered, even when the client closes at once."""

    async def main() -> None:
        async with node() as (_, address):
            sub = await BusClient.connect(address, "sub")
            pub = await BusClient.connect(address, "pub")
            await pub.send(pub.message("sub", 1), confirm=True)
            assert (await sub.receive(timeout=5)).payload == 1
            await sub.close()
            await pub.ping()
            stats = await pub.stats()
            assert (stats["delivered"], stats["dead_lettered"]) == (1, 0)
            await pub.close()

    run(main)


def test_a_copy_that_expires_at_the_node_is_a_dead_letter() -> None:
    """BUS-029 across processes: a copy whose ttl runs out while it waits at the node (window 0)
    is never sent; it becomes a TTL_EXPIRED dead letter."""

    async def main() -> None:
        async with node() as (_, address):
            sub = await BusClient.connect(address, "sub")
            pub = await BusClient.connect(address, "pub")
            await pub.send(pub.message("sub", "short", ttl=s.Ttl(0, 50_000_000)), confirm=True)
            kept = await pub.send(pub.message("sub", "kept"), confirm=True)
            await asyncio.sleep(0.2)  # the 50 ms pass (checked against the node's clock, not timed)
            assert await sub.receive(timeout=5) == kept
            dead = await pub.dead_letters()
            assert [(d["message"]["payload"], d["reason"], d["recipient"]) for d in dead] == [
                ("short", "TTL_EXPIRED", "sub")
            ]
            await sub.close()
            await pub.close()

    run(main)


# ---------------------------------------------------------------- forwarding the received bytes


def _mp_with_timestamp96(msg: s.Message) -> bytes:
    """``msg`` in MessagePack with its timestamp in the 96-bit form: valid (COD-102, a decoder
    accepts every form) but not what an encoder emits, so the bytes show where a copy came from."""
    import msgspec

    h = msg.header
    ns = h.timestamp.ns
    ts = msgspec.msgpack.Ext(-1, (ns % 10**9).to_bytes(4) + (ns // 10**9).to_bytes(8, signed=True))
    cid = None if h.correlation_id is None else bytes.fromhex(h.correlation_id.replace("-", ""))
    header: list[object] = [bytes.fromhex(h.id.replace("-", "")), cid, h.message_type.value, h.source]
    header += [h.target, ts, None, h.priority, [1, 0]]
    return msgspec.msgpack.encode([header, msg.payload, msg.metadata])


def test_copies_are_the_received_msgpack_bytes_and_encoded_for_json() -> None:
    """BUS-003: a copy is the message unchanged; to a MessagePack connection the node writes the
    bytes it received (no second encoding), to a JSON connection it encodes the message."""

    async def main() -> None:
        async with node() as (n, address):
            mp = await connect(address, codecs=("msgpack",))
            js = await Raw.open(address)
            codec: s.Codec
            for conn, eid, codec in ((mp, "m", "msgpack"), (js.conn, "j", "json")):
                reg = s.new_message(REQ, eid, "bus:system", {"op": "register", "window": 4})
                await conn.send_frame(s.encode(reg, codec))
                assert s.decode(await conn.recv_frame(5), codec).payload["window"] == 4
            await js.control("j", "subscribe", topic="t")
            await mp.send_frame(
                s.encode(s.new_message(REQ, "m", "bus:system", {"op": "subscribe", "topic": "t"}), "msgpack")
            )
            await mp.recv_frame(5)
            sent = s.new_message(EV, "m", "topic:t", {"x": [1, 2]}, metadata={"k": "v"})
            frame = _mp_with_timestamp96(sent)
            assert s.decode(frame, "msgpack") == sent
            assert frame != s.encode(sent, "msgpack")
            await mp.send_frame(frame)
            assert await mp.recv_frame(5) == frame  # the very bytes
            assert await js.recv() == sent  # encoded for JSON, equal
            await mp.send_frame(s.encode(ack_of("m", sent.header.id), "msgpack"))
            await js.send(ack_of("j", sent.header.id))
            assert (await js.control("j", "ping")).payload == {}
            assert sent.header.id not in n.wire.raw  # acknowledged: the bytes are gone
            await mp.close()
            await js.conn.close()

    run(main)


def test_wire_cache_is_bounded_and_keyed_by_the_message_object() -> None:
    from symphony_ipc.bus._node import _Wire

    wire = _Wire(max_entries=3, max_bytes=100)
    msgs = [s.new_message(EV, "a", "b", i) for i in range(5)]
    for m in msgs:
        wire.put(m, b"x" * 10)
    assert [wire.get(m) for m in msgs] == [None, None, b"x" * 10, b"x" * 10, b"x" * 10]
    twin = s.Message(msgs[4].header, msgs[4].payload, msgs[4].metadata)  # equal, another object
    assert wire.get(twin) is None
    wire.drop(twin)  # not the stored one: kept
    assert wire.get(msgs[4]) == b"x" * 10
    wire.drop(msgs[4])
    assert wire.get(msgs[4]) is None
    big = s.new_message(EV, "a", "b", None)
    wire.put(big, b"y" * 95)  # over max_bytes with the others: they go, oldest first
    assert wire.get(big) == b"y" * 95
    assert wire.get(msgs[3]) is None
    assert len(wire.raw) == 1


# ---------------------------------------------------------------- NODE-010: answers acknowledge


def test_an_answer_acknowledges_the_request_for_an_answer_acks_endpoint() -> None:
    """NODE-010: registered with answer_acks, an endpoint's Response acknowledges the Request copy
    it answers (the next copy follows at window 1, a later ack of it is refused); without it,
    the copy stays in flight until acknowledged; a non-boolean answer_acks is refused."""

    async def main() -> None:
        async with node() as (n, address):
            raw = await Raw.open(address)
            bad = await raw.control("svc", "register", window=1, answer_acks="yes")
            assert bad.payload["code"] == "INVALID_OPERATION"
            ok = await raw.control("svc", "register", window=1, answer_acks=True)
            assert ok.payload == {"endpoint": "svc", "window": 1, "answer_acks": True}
            assert (await raw.control("old", "register", window=1)).payload["answer_acks"] is False
            cli = await BusClient.connect(address, "cli")
            for target in ("svc", "old"):
                r1 = s.new_message(REQ, "cli", target, 1)
                r2 = s.new_message(REQ, "cli", target, 2)
                waiting = [asyncio.create_task(cli._await(r, 10)) for r in (r1, r2)]
                got = await raw.recv()
                assert got == r1
                await raw.send(s.new_message(RESP, target, "cli", "one", correlation_id=r1.header.id))
                assert (await waiting[0]).payload == "one"
                if target == "svc":  # acknowledged by the answer: the second copy comes
                    assert await raw.recv() == r2
                    late = ack_of("svc", r1.header.id)
                    await raw.send(late)
                    refusal = await raw.recv()
                    assert refusal.header.correlation_id == late.header.id
                    assert refusal.payload["code"] == "INVALID_OPERATION"
                else:  # still in flight: nothing more until the acknowledgement
                    assert (await raw.control("old", "ping")).payload == {}
                    assert n.bus.core.in_flight("old", r1.header.id) == r1
                    await raw.send(ack_of("old", r1.header.id))
                    assert await raw.recv() == r2
                await raw.send(s.new_message(RESP, target, "cli", "two", correlation_id=r2.header.id))
                assert (await waiting[1]).payload == "two"
            await raw.send(ack_of("old", r2.header.id))
            assert (await raw.control("old", "ping")).payload == {}
            stats = (await raw.control("old", "stats")).payload["stats"]
            assert stats["pending"] == 0
            assert stats["delivered"] == 8  # four request copies, four answers
            await cli.close()
            await raw.conn.close()

    run(main)


def test_bus_client_serve_sends_no_acknowledgement_for_answered_requests() -> None:
    """NODE-010 in the client: serve() answers acknowledge; a handler that raises still sends
    bus.ack = false, and the node retries the copy (BUS-031)."""

    async def main() -> None:
        async with node() as (_, address):
            svc = await BusClient.connect(address, "svc", prefetch=8)
            assert svc.answer_acks
            acks: list[bool] = []
            send_ack = svc._ack

            def ack(mid: str, ok: bool) -> None:
                acks.append(ok)
                send_ack(mid, ok)

            svc._ack = ack  # type: ignore[assignment,method-assign]
            calls = 0

            def handler(m: s.Message) -> Any:
                nonlocal calls
                calls += 1
                if calls == 3:
                    raise RuntimeError("the third call fails")
                return m.payload

            serving = asyncio.create_task(svc.serve(handler))
            cli = await BusClient.connect(address, "cli")
            answers = await asyncio.gather(*(cli.request("svc", i, timeout=10) for i in range(20)))
            assert [a.payload for a in answers] == list(range(20))
            assert acks == [False]  # only the failed attempt was acknowledged by a message
            stats = await cli.stats()
            assert stats["pending"] == 0
            assert stats["failed"] == 1
            assert stats["delivered"] == 40
            serving.cancel()
            await cli.close()
            await svc.close()

    run(main)


def test_a_long_read_is_answered_in_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames that arrive together are answered every FLUSH_EVERY frames, not all at the end of the
    turn: the processes of a pipeline overlap instead of taking turns (bus.node.pipelined)."""
    from symphony_ipc.bus import _node

    writes: list[int] = []
    real = _node.NodeConnection._flush

    def flush(self: _node.NodeConnection) -> None:
        if self._out:
            writes.append(len(self._out))
        real(self)

    monkeypatch.setattr(_node.NodeConnection, "_flush", flush)
    n = 3 * _node.FLUSH_EVERY + 5

    async def main() -> None:
        async with node() as (_, address):
            raw = await Raw.open(address)
            await raw.control("a", "register")
            writes.clear()
            pings = [s.new_message(REQ, "a", "bus:system", {"op": "ping"}) for _ in range(n)]
            assert raw.conn.send_frames_nowait([s.encode(m, "json") for m in pings])  # one write
            answers = [await raw.recv() for _ in range(n)]
            assert [a.header.correlation_id for a in answers] == [m.header.id for m in pings]
            await raw.conn.close()

    run(main)
    assert sum(writes) == n
    assert max(writes) <= _node.FLUSH_EVERY
    assert len(writes) >= 3  # not one write per frame either


def test_a_client_writes_a_burst_in_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client side of the same: messages queued in one turn go out every FLUSH_EVERY."""
    from symphony_ipc.bus import _client, _node

    writes: list[int] = []
    real = _client.BusClient._flush

    def flush(self: _client.BusClient) -> None:
        if self._out:
            writes.append(len(self._out))
        real(self)

    monkeypatch.setattr(_client.BusClient, "_flush", flush)
    n = 3 * _node.FLUSH_EVERY + 5

    async def main() -> None:
        async with node() as (_, address):
            got: list[s.Message] = []
            rx, tx = await BusClient.connect(address, "rx"), await BusClient.connect(address, "tx")
            async with rx, tx:
                await rx.subscribe("t")
                writes.clear()
                for i in range(n):  # queued without a turn of the loop in between
                    tx._put(tx.message("topic:t", i))
                for _ in range(n):
                    got.append(await rx.receive(timeout=5))
            assert sorted(payloads(got)) == list(range(n))

    run(main)
    assert max(writes) <= _node.FLUSH_EVERY
    assert sum(writes) >= n
