"""The asyncio shell over :class:`BusCore`: handler tasks, awaitable requests, backpressure waits.

Time never comes from asyncio: every deadline (request timeouts, backpressure waits) is a timer of
the core on the injected clock. With the system clock the shell arms one ``loop.call_later`` for
the earliest deadline and polls the core when it fires; with a :class:`~symphony_ipc.ManualClock`
nothing times out until the test moves the clock and calls :meth:`MessageBus.poll` (BUS-045), so
tests are deterministic and never sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from .._errors import ERROR_CLASSES, Backpressure, EndpointClosed, ErrorCode, InvalidOperation, ProtocolError
from .._model import Message, MessageType, new_message
from .._time import SYSTEM_CLOCK, Clock, ManualClock, SystemClock
from ._core import SYSTEM_SOURCE, BusConfig, BusCore, BusStats, DeadLetter, Rule, TimerHandle

AsyncHandler = Callable[[Message], Awaitable[object]]
SyncHandler = Callable[[Message], object]


class Endpoint:
    """A registered endpoint. Pull-mode endpoints (no handler) read with :meth:`receive`."""

    __slots__ = ("_bus", "id")

    def __init__(self, bus: MessageBus, endpoint_id: str) -> None:
        self._bus = bus
        self.id = endpoint_id

    async def receive(self) -> Message:
        """The next message for this endpoint, waiting for one; taking it acknowledges it
        (BUS-030). Raises ``ENDPOINT_CLOSED`` once the endpoint has left."""
        core = self._bus.core
        while True:
            if not core.is_registered(self.id):
                raise EndpointClosed(f"endpoint {self.id!r} has left", endpoint=self.id)
            msg = core.receive(self.id)
            if msg is not None:
                return msg
            await self._bus._wait_for_copy(self.id)

    def receive_nowait(self) -> Message | None:
        return self._bus.core.receive(self.id)

    def subscribe(self, topic: str) -> None:
        self._bus.core.subscribe(self.id, topic)

    def unsubscribe(self, topic: str) -> None:
        self._bus.core.unsubscribe(self.id, topic)

    def close(self) -> None:
        """Leave the bus (BUS-037)."""
        if self._bus.core.is_registered(self.id):
            self._bus.unregister(self.id)


class _SendWaiter:
    __slots__ = ("full", "future", "msg", "timeout_ns", "timer", "waiter")

    def __init__(
        self,
        msg: Message,
        future: asyncio.Future[None],
        timeout_ns: int | None,
        waiter: Callable[[Message | None], None] | None,
        full: list[str],
    ) -> None:
        self.msg = msg
        self.future = future
        self.timeout_ns = timeout_ns
        self.waiter = waiter
        self.full = full
        self.timer: TimerHandle | None = None


class MessageBus:
    """An in-process message bus (spec/bus.md) for one asyncio event loop.

    Handlers run in one task per endpoint (BUS-033): a plain function is called for each copy, a
    coroutine function is awaited; raising fails the attempt (BUS-030, BUS-031).
    """

    def __init__(
        self,
        config: BusConfig | None = None,
        *,
        clock: Clock | None = None,
        auto_timers: bool | None = None,
    ) -> None:
        clock = SYSTEM_CLOCK if clock is None else clock
        self.core = BusCore(config, clock=clock)
        self.clock = clock
        #: arm asyncio timers for the core's deadlines (default: only with the system clock)
        self.auto_timers = isinstance(clock, SystemClock) if auto_timers is None else auto_timers
        self._consumers: dict[str, asyncio.Task[None]] = {}
        self._copy_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._send_waiters: deque[_SendWaiter] = deque()
        self._retry_scheduled = False
        self._armed: asyncio.TimerHandle | None = None
        self._armed_due: int | None = None
        self._idle: list[asyncio.Future[None]] = []
        self._closed = False

    @property
    def config(self) -> BusConfig:
        return self.core.config

    # ------------------------------------------------------------------ endpoints

    def register(self, endpoint_id: str, handler: SyncHandler | AsyncHandler | None = None) -> Endpoint:
        """Register an endpoint; with a handler a task delivers its copies (call from a running
        loop). Without one, the application reads with :meth:`Endpoint.receive`."""
        if self._closed:
            raise InvalidOperation("the bus is closed")
        if handler is None:
            self.core.register(endpoint_id)
        elif inspect.iscoroutinefunction(handler):
            loop = asyncio.get_running_loop()
            self.core.register(endpoint_id)
            self._consumers[endpoint_id] = loop.create_task(
                self._consume_async(endpoint_id, handler), name=f"bus:{endpoint_id}"
            )
        else:
            loop = asyncio.get_running_loop()
            sync: SyncHandler = handler

            def call(msg: Message, attempt: int) -> None:
                result = sync(msg)
                if inspect.isawaitable(result):
                    if inspect.iscoroutine(result):
                        result.close()
                    raise TypeError("a plain-function handler returned an awaitable: use `async def`")

            self.core.register(endpoint_id, call)
            self._consumers[endpoint_id] = loop.create_task(
                self._consume_sync(endpoint_id), name=f"bus:{endpoint_id}"
            )
        return Endpoint(self, endpoint_id)

    def unregister(self, endpoint_id: str) -> None:
        """The endpoint leaves (BUS-037); its handler task ends."""
        self.core.unregister(endpoint_id)
        task = self._consumers.pop(endpoint_id, None)
        if task is not None and task is not _current_task():
            task.cancel()
        self._wake_copy_waiters(endpoint_id)
        self._check_idle()

    def subscribe(self, endpoint_id: str, topic: str) -> None:
        self.core.subscribe(endpoint_id, topic)

    def unsubscribe(self, endpoint_id: str, topic: str) -> None:
        self.core.unsubscribe(endpoint_id, topic)

    def add_rule(self, rule: Rule) -> None:
        self.core.add_rule(rule)

    def remove_rule(self, rule_id: str) -> None:
        self.core.remove_rule(rule_id)

    def enable_rule(self, rule_id: str, enabled: bool) -> None:
        self.core.enable_rule(rule_id, enabled)

    # ------------------------------------------------------------------ sending

    def send_nowait(self, msg: Message) -> None:
        """Submit without waiting: a full recipient is ``BACKPRESSURE`` at once."""
        self.core.submit(msg)
        if msg.header.message_type is MessageType.REQUEST:
            self._arm()

    async def send(self, msg: Message, *, backpressure_timeout_ns: int | None = None) -> None:
        """Submit ``msg`` (any pattern: its target decides, spec/bus.md section 1), waiting up to
        the backpressure timeout for room (BUS-035, BUS-036)."""
        if backpressure_timeout_ns is None and not self._closed:
            try:  # the usual case without a second coroutine
                self.core.submit(msg, final=self.core.config.backpressure_timeout_ns == 0)
            except Backpressure:
                if self.core.config.backpressure_timeout_ns == 0:
                    raise
            else:
                if msg.header.message_type is MessageType.REQUEST:
                    self._arm()
                return
        await self._submit(msg, backpressure_timeout_ns, None, None)

    async def publish(self, msg: Message, *, backpressure_timeout_ns: int | None = None) -> None:
        """:meth:`send` for a message whose target is ``topic:NAME``."""
        if not msg.header.target.startswith("topic:"):
            raise InvalidOperation(f"publish needs a topic:NAME target, got {msg.header.target!r}")
        await self._submit(msg, backpressure_timeout_ns, None, None)

    async def broadcast(self, msg: Message, *, backpressure_timeout_ns: int | None = None) -> None:
        """:meth:`send` for a message whose target is ``bus:broadcast``."""
        if msg.header.target != "bus:broadcast":
            raise InvalidOperation(f"broadcast needs the bus:broadcast target, got {msg.header.target!r}")
        await self._submit(msg, backpressure_timeout_ns, None, None)

    async def request(
        self, msg: Message, *, timeout_ns: int | None = None, backpressure_timeout_ns: int | None = None
    ) -> Message:
        """Send a ``Request`` and await its answer (BUS-019..BUS-025): the ``Response`` (or the
        responder's ``Error`` message); the bus's own answers raise ``REQUEST_TIMEOUT`` or
        ``ENDPOINT_CLOSED`` instead."""
        if msg.header.message_type is not MessageType.REQUEST:
            raise InvalidOperation(f"request needs a Request, got a {msg.header.message_type.value}")
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Message | None] = loop.create_future()

        def waiter(m: Message | None) -> None:
            if not answer.done():
                answer.set_result(m)

        await self._submit(msg, backpressure_timeout_ns, timeout_ns, waiter)
        result = await answer
        if result is None:
            raise EndpointClosed(f"requester {msg.header.source!r} left before the answer")
        h = result.header
        if h.source == SYSTEM_SOURCE and h.message_type is MessageType.ERROR:
            payload: dict[str, Any] = result.payload
            cls = ERROR_CLASSES[ErrorCode(payload["code"])]
            err = cls.__new__(cls)
            ProtocolError.__init__(err, payload["message"], request_id=h.correlation_id)
            raise err
        return result

    async def respond(self, request: Message, payload: Any = None, **fields: Any) -> Message:
        """Answer ``request`` with a ``Response`` from its target to its source; returns it."""
        h = request.header
        msg = new_message(
            MessageType.RESPONSE,
            h.target,
            h.source,
            payload,
            correlation_id=h.id,
            priority=fields.pop("priority", h.priority),
            clock=self.clock,
            **fields,
        )
        await self.send(msg)
        return msg

    async def _submit(
        self,
        msg: Message,
        bp_timeout: int | None,
        timeout_ns: int | None,
        waiter: Callable[[Message | None], None] | None,
    ) -> None:
        if self._closed:
            raise InvalidOperation("the bus is closed")
        core = self.core
        wait = core.config.backpressure_timeout_ns if bp_timeout is None else bp_timeout
        try:
            core.submit(msg, timeout_ns=timeout_ns, waiter=waiter, final=wait == 0)
        except Backpressure as e:
            if wait == 0:
                raise
            full = list(e.details.get("full", []))
        else:
            if waiter is not None or msg.header.message_type is MessageType.REQUEST:
                self._arm()
            return
        # BUS-036: wait, retried from scratch when room appears, in the order waiting began
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        w = _SendWaiter(msg, future, timeout_ns, waiter, full)
        w.timer = core.call_at(core.clock.now_ns() + wait, lambda: self._give_up(w))
        self._send_waiters.append(w)
        core.on_space = self._on_space
        self._arm()
        try:
            await future
        finally:
            if w in self._send_waiters:  # cancelled by the caller
                self._send_waiters.remove(w)
                core.note_rejected()
            if w.timer is not None:
                w.timer.cancel()
            if not self._send_waiters:
                core.on_space = None

    def _on_space(self) -> None:
        if not self._retry_scheduled:
            self._retry_scheduled = True
            asyncio.get_running_loop().call_soon(self._retry_waiters)

    def _retry_waiters(self) -> None:
        self._retry_scheduled = False
        for w in list(self._send_waiters):
            if w.future.done():
                continue
            try:
                self.core.submit(w.msg, timeout_ns=w.timeout_ns, waiter=w.waiter, final=False)
            except Backpressure as e:
                w.full = list(e.details.get("full", []))
                continue
            except ProtocolError as e:  # e.g. expired or unroutable by now: counted by the core
                self._send_waiters.remove(w)
                w.future.set_exception(e)
                continue
            self._send_waiters.remove(w)
            w.future.set_result(None)
        self._arm()

    def _give_up(self, w: _SendWaiter) -> None:
        if w in self._send_waiters and not w.future.done():
            self._send_waiters.remove(w)
            self.core.note_rejected()
            w.future.set_exception(
                Backpressure(f"no room at {', '.join(w.full)} in time (BUS-035)", full=w.full)
            )

    # ------------------------------------------------------------------ time

    def poll(self) -> int:
        """Fire the core's due timers (request timeouts, backpressure give-ups) at the clock's now."""
        n = self.core.poll()
        self._arm()
        return n

    def advance(self, ns: int) -> int:
        """Move a :class:`ManualClock` forward and poll (tests)."""
        if not isinstance(self.clock, ManualClock):
            raise InvalidOperation("advance() needs a ManualClock")
        self.clock.advance(ns)
        return self.poll()

    def _arm(self) -> None:
        if not self.auto_timers:
            return
        due = self.core.next_due()
        armed = self._armed_due
        if armed is not None and (due is None or due >= armed):
            return  # the armed wake-up comes first: it polls and arms the next one then
        if self._armed is not None:
            self._armed.cancel()
            self._armed = None
        self._armed_due = due
        if due is not None:
            delay = max(0.0, (due - self.clock.now_ns()) / 1e9)
            self._armed = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        self._armed = None
        self._armed_due = None
        self.poll()

    # ------------------------------------------------------------------ consumers

    async def _wait_for_copy(self, endpoint_id: str) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting = self._copy_waiters.setdefault(endpoint_id, [])
        waiting.append(future)
        if len(waiting) == 1:
            self.core.set_wake(endpoint_id, lambda: self._wake_copy_waiters(endpoint_id))
        await future

    def _wake_copy_waiters(self, endpoint_id: str) -> None:
        for f in self._copy_waiters.pop(endpoint_id, []):
            if not f.done():
                f.set_result(None)

    async def _consume_sync(self, endpoint_id: str) -> None:
        core = self.core
        while core.is_registered(endpoint_id):
            core.deliver(endpoint_id)
            if core.pending(endpoint_id) == 0:
                self._check_idle()
                await self._wait_for_copy(endpoint_id)
            else:
                await asyncio.sleep(0)

    async def _consume_async(self, endpoint_id: str, handler: AsyncHandler) -> None:
        core = self.core
        while core.is_registered(endpoint_id):
            d = core.take(endpoint_id)
            if d is None:
                self._check_idle()
                await self._wait_for_copy(endpoint_id)
                continue
            try:
                await handler(d.message)
                ok = True
            except Exception:  # BUS-032: the failure stays with this copy
                ok = False
            core.settle(endpoint_id, d.message.header.id, ok)

    async def join(self) -> None:
        """Wait until every endpoint with a handler has no pending copy."""
        while not self._all_idle():
            f: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._idle.append(f)
            await f

    def _all_idle(self) -> bool:
        core = self.core
        return all(core.pending(eid) == 0 for eid in self._consumers if core.is_registered(eid))

    def _check_idle(self) -> None:
        if self._idle and self._all_idle():
            idle, self._idle = self._idle, []
            for f in idle:
                if not f.done():
                    f.set_result(None)

    # ------------------------------------------------------------------ observation and shutdown

    def stats(self) -> BusStats:
        return self.core.stats()

    def dead_letters(self) -> list[DeadLetter]:
        return self.core.dead_letters()

    def history(self) -> list[Message]:
        return self.core.history()

    async def close(self) -> None:
        """Unregister every endpoint (pending copies become dead letters, BUS-037), end the
        handler tasks and fail waiting senders."""
        if self._closed:
            return
        self._closed = True
        for eid in self.core.endpoints():
            self.unregister(eid)
        for w in list(self._send_waiters):
            self._send_waiters.remove(w)
            self.core.note_rejected()
            if not w.future.done():
                w.future.set_exception(EndpointClosed("the bus closed"))
        if self._armed is not None:
            self._armed.cancel()
        tasks = list(self._consumers.values())
        self._consumers.clear()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    async def __aenter__(self) -> MessageBus:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None
