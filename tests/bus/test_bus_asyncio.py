"""The asyncio shell: handler tasks, awaitable requests, backpressure waits, all on virtual time.

No test sleeps on the wall clock or asserts a duration: time moves only when a test moves the
ManualClock and polls (BUS-045). The one system-clock test only checks that a deadline fires.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from bus_support import SEC, T0

import symphony_ipc as s
from symphony_ipc.bus import BusConfig, MessageBus

EV, REQ, RESP = s.MessageType.EVENT, s.MessageType.REQUEST, s.MessageType.RESPONSE


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro_fn(), 30))  # a safety net against a hang, not a timing


async def settle() -> None:
    """Let every ready task run (the consumers are one hop away)."""
    for _ in range(10):
        await asyncio.sleep(0)


def new_bus(**limits: int) -> tuple[MessageBus, s.ManualClock]:
    clock = s.ManualClock(T0)
    return MessageBus(BusConfig(**limits), clock=clock), clock


def msg(clock: s.ManualClock, source: str, target: str, payload: Any = None, **kw: Any) -> s.Message:
    mtype = kw.pop("mtype", EV)
    return s.new_message(mtype, source, target, payload, clock=clock, **kw)


def test_sync_and_async_handlers_and_pull_mode() -> None:
    async def main() -> None:
        bus, clock = new_bus()
        got: list[tuple[str, Any]] = []

        async def ahandler(m: s.Message) -> None:
            await asyncio.sleep(0)
            got.append(("async", m.payload))

        async with bus:
            bus.register("sync", lambda m: got.append(("sync", m.payload)))
            bus.register("async", ahandler)
            inbox = bus.register("pull")
            for name in ("sync", "async", "pull"):
                bus.subscribe(name, "t")
            await bus.publish(msg(clock, "sync", "topic:t", 1))
            await bus.send(msg(clock, "sync", "async", 2))
            assert (await inbox.receive()).payload == 1
            assert inbox.receive_nowait() is None
            await bus.join()
            assert sorted(got) == [("async", 1), ("async", 2), ("sync", 1)]
            assert bus.stats().delivered == 4

    run(main)


def test_a_slow_handler_does_not_hold_up_the_others() -> None:
    """BUS-033: one endpoint's handler is stuck; another endpoint still gets its copies."""

    async def main() -> None:
        bus, clock = new_bus()
        release = asyncio.Event()
        fast: list[Any] = []

        async def slow(m: s.Message) -> None:
            await release.wait()

        async with bus:
            bus.register("slow", slow)
            bus.register("fast", lambda m: fast.append(m.payload))
            bus.subscribe("slow", "t")
            bus.subscribe("fast", "t")
            for i in range(3):
                await bus.publish(msg(clock, "fast", "topic:t", i))
            await settle()
            assert fast == [0, 1, 2]
            assert bus.core.pending("slow") == 3
            release.set()
            await bus.join()
            assert bus.core.pending("slow") == 0

    run(main)


def test_failing_async_handler_is_retried_then_dead_lettered() -> None:
    async def main() -> None:
        bus, clock = new_bus(max_attempts=2)
        ok: list[Any] = []

        async def flaky(m: s.Message) -> None:
            if m.payload == "bad":
                raise ValueError("no")
            ok.append(m.payload)

        async with bus:
            bus.register("h", flaky)
            await bus.send(msg(clock, "h", "h", "bad"))
            await bus.send(msg(clock, "h", "h", "good"))
            await bus.join()
            assert ok == ["good"]
            (d,) = bus.dead_letters()
            assert (d.reason.value, d.attempts) == ("HANDLER_FAILED", 2)

    run(main)


def test_request_response_and_timeout_on_virtual_time() -> None:
    async def main() -> None:
        bus, clock = new_bus(request_timeout_ns=5 * SEC)

        async def server(m: s.Message) -> None:
            if m.payload == "ping":
                await bus.respond(m, "pong")

        async with bus:
            bus.register("client")
            bus.register("server", server)
            answer = await bus.request(msg(clock, "client", "server", "ping", mtype=REQ))
            assert (answer.header.message_type, answer.payload) == (RESP, "pong")

            waiting = asyncio.ensure_future(bus.request(msg(clock, "client", "server", "ignored", mtype=REQ)))
            await settle()
            assert not waiting.done()
            bus.advance(5 * SEC)  # now - accepted == timeout: not yet
            await settle()
            assert not waiting.done()
            bus.advance(1)
            with pytest.raises(s.RequestTimeout) as info:
                await waiting
            assert info.value.details["request_id"] is not None
            assert bus.stats().outstanding_requests == 0

    run(main)


def test_request_to_an_endpoint_that_leaves() -> None:
    async def main() -> None:
        bus, clock = new_bus()
        async with bus:
            bus.register("client")
            bus.register("server")  # pull mode: never answers
            waiting = asyncio.ensure_future(bus.request(msg(clock, "client", "server", mtype=REQ)))
            await settle()
            bus.unregister("server")
            with pytest.raises(s.EndpointClosed):
                await waiting

    run(main)


def test_backpressure_waits_for_room_then_goes_in() -> None:
    async def main() -> None:
        bus, clock = new_bus(max_pending=1, backpressure_timeout_ns=10 * SEC)
        async with bus:
            bus.register("src")
            inbox = bus.register("dst")
            await bus.send(msg(clock, "src", "dst", 1))
            second = asyncio.ensure_future(bus.send(msg(clock, "src", "dst", 2)))
            await settle()
            assert not second.done()  # waiting, not dropped, not let in (BUS-036)
            assert bus.core.pending("dst") == 1
            assert (await inbox.receive()).payload == 1  # room appears
            await second
            assert (await inbox.receive()).payload == 2
            st = bus.stats()
            assert (st.accepted, st.rejected) == (2, 0)

    run(main)


def test_backpressure_gives_up_after_the_timeout() -> None:
    async def main() -> None:
        bus, clock = new_bus(max_pending=1, backpressure_timeout_ns=2 * SEC)
        async with bus:
            bus.register("src")
            bus.register("dst")
            await bus.send(msg(clock, "src", "dst", 1))
            second = asyncio.ensure_future(bus.send(msg(clock, "src", "dst", 2)))
            await settle()
            bus.advance(2 * SEC - 1)
            await settle()
            assert not second.done()
            bus.advance(1)  # waited the whole timeout
            with pytest.raises(s.Backpressure) as info:
                await second
            assert info.value.details["full"] == ["dst"]
            st = bus.stats()
            assert (st.accepted, st.rejected, st.pending) == (1, 1, 1)
            with pytest.raises(s.Backpressure):
                bus.send_nowait(msg(clock, "src", "dst", 3))  # no wait at all

    run(main)


def test_close_dead_letters_what_is_pending() -> None:
    async def main() -> None:
        bus, clock = new_bus()
        bus.register("a")
        bus.register("b")
        await bus.send(msg(clock, "a", "b", "left behind"))
        await bus.close()
        (d,) = bus.dead_letters()
        assert (d.reason.value, d.recipient) == ("ENDPOINT_CLOSED", "b")
        with pytest.raises(s.InvalidOperation):
            await bus.send(msg(clock, "a", "b"))

    run(main)


def test_pull_receiver_waits_and_learns_its_endpoint_left() -> None:
    async def main() -> None:
        bus, clock = new_bus()
        async with bus:
            bus.register("a")
            inbox = bus.register("b")
            pending = asyncio.ensure_future(inbox.receive())
            await settle()
            bus.send_nowait(msg(clock, "a", "b", "hi"))
            assert (await pending).payload == "hi"
            again = asyncio.ensure_future(inbox.receive())
            await settle()
            inbox.close()
            with pytest.raises(s.EndpointClosed):
                await again

    run(main)


def test_system_clock_timers_fire() -> None:
    """With the system clock the shell arms asyncio timers itself (no duration is asserted)."""

    async def main() -> None:
        async with MessageBus() as bus:
            bus.register("client")
            bus.register("server")
            req = s.new_message(REQ, "client", "server")
            with pytest.raises(s.RequestTimeout):
                await bus.request(req, timeout_ns=1_000_000)

    run(main)


def test_a_plain_handler_returning_a_coroutine_fails_its_attempts() -> None:
    async def main() -> None:
        bus, clock = new_bus(max_attempts=1)

        async def coro() -> None:
            return None

        async with bus:
            bus.register("h", lambda m: coro())
            await bus.send(msg(clock, "h", "h"))
            await bus.join()
            (d,) = bus.dead_letters()
            assert d.reason.value == "HANDLER_FAILED"

    run(main)


def test_an_answered_request_does_not_rearm_the_loop_timer() -> None:
    """The shell keeps its asyncio timer when the earliest deadline only moves later (an answered
    request): the timer polls early and re-arms then; an earlier deadline re-arms at once and
    fires (BUS-024)."""

    async def main() -> None:
        async with MessageBus() as bus:
            bus.register("client")
            bus.register("server")
            core = bus.core
            answers: list[s.Message | None] = []
            first = s.new_message(REQ, "client", "server")
            core.submit(first, waiter=answers.append)
            bus._arm()
            armed = bus._armed
            assert armed is not None
            taken = core.take("server")
            assert taken is not None
            core.settle("server", first.header.id, True)
            core.submit(s.new_message(RESP, "server", "client", correlation_id=first.header.id))
            core.submit(s.new_message(REQ, "client", "server"), waiter=answers.append)
            bus._arm()
            assert bus._armed is armed  # the deadline moved later: the same timer
            soon = s.new_message(REQ, "client", "server")
            core.submit(soon, waiter=answers.append, timeout_ns=1_000_000)
            bus._arm()
            assert bus._armed is not armed  # an earlier deadline: re-armed
            for _ in range(1000):
                if len(answers) == 2:
                    break
                await asyncio.sleep(0.005)
            last = answers[-1]
            assert last is not None
            assert last.header.correlation_id == soon.header.id
            assert last.payload["code"] == "REQUEST_TIMEOUT"

    run(main)
