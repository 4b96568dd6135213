"""The bus node: one :class:`MessageBus` served to other processes over the transports.

Every frame after the handshake is one envelope message in the negotiated codec (FRM-001); the
node's wire protocol is spec/bus.md section 14:

* a **control request** is a ``Request`` to ``bus:system`` whose payload is ``{"op": ...}``
  (``register``, ``unregister``, ``subscribe``, ``unsubscribe``, ``window``, ``ping``, ``stats``,
  ``dead_letters``); the node answers it with a ``Response`` (the result object) or an ``Error``
  (the error wire form) from ``bus:system``, ``correlation_id`` = the request's id;
* an **acknowledgement** is an ``Event`` to ``bus:ack`` (spec/bus.md section 1) — or, for an
  endpoint registered with ``answer_acks`` (NODE-010), its answer to a request copy in flight;
* anything else is a **submission** to the bus, from an endpoint the connection registered.

The node's own answers to a connection (control responses, refusals) carry the metadata
``bus.reply`` = ``true``: they are not deliveries and are never acknowledged. Deliveries are the
endpoint's copies, sent in the bus's order (BUS-027) while fewer than the endpoint's *window* are
unacknowledged; a connection that ends takes its endpoints with it (BUS-037).

Frames are handled in the transport's reader callback, in arrival order, with no task switch per
frame; a submission that must wait for room (BUS-035) parks the connection's later frames until it
is settled, so one connection's submissions are accepted or refused in the order they were sent.

A copy is written as the MessagePack bytes the node received for it when it has them (a delivery
is the message unchanged, BUS-003, so the sender's encoding is one): :class:`_Wire` keeps them for
the accepted submissions until the copy is acknowledged or the answer written, within a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from .._codec import Codec, decode, encode
from .._errors import Backpressure, InvalidOperation, ProtocolError
from .._model import Message, MessageType, new_message
from .._time import Clock
from ._asyncio import MessageBus
from ._core import SYSTEM_SOURCE, BusConfig, Waiter, dead_letter_to_data

if TYPE_CHECKING:
    from ..security import RateLimit
    from ..transport import Listener, StreamConnection, Transport

ACK_TARGET: Final = "bus:ack"
ACK_KEY: Final = "bus.ack"
REPLY_KEY: Final = "bus.reply"
UNKNOWN_TARGET: Final = "bus:unknown"
DEFAULT_WINDOW: Final = 16
FLUSH_EVERY: Final = 16
"""Frames queued in one turn are written at once when this many are waiting, not only at the end
of the turn: a read that brings hundreds of frames would otherwise hold every answer back until
the last is handled, and the processes of a pipeline would take turns instead of overlapping."""
MAX_WINDOW: Final = 1 << 20
OPS: Final = ("register", "unregister", "subscribe", "unsubscribe", "window", "ping", "stats", "dead_letters")

_REQUEST = MessageType.REQUEST
_EVENT = MessageType.EVENT
_RESPONSE = MessageType.RESPONSE
_ERROR = MessageType.ERROR
_REPLY_META: Final = {REPLY_KEY: True}


def _window(value: object, default: int) -> int:
    if value is None:
        return default
    if type(value) is not int or not 0 <= value <= MAX_WINDOW:
        raise InvalidOperation(f"window must be an integer in [0, {MAX_WINDOW}], got {value!r}")
    return value


def _topic(payload: dict[str, Any]) -> str:
    topic = payload.get("topic")
    if not isinstance(topic, str):
        raise InvalidOperation(f"the op needs a topic name (a string), got {topic!r}", field="topic")
    return topic


class _Wire:
    """The received MessagePack bytes of accepted messages, by message id, so that the node
    forwards them instead of encoding the message again.

    An entry goes when its copy is acknowledged or its answer written; the oldest go first past
    ``max_entries`` entries or ``max_bytes`` bytes (a message that is never delivered, a copy
    delivered twice: it is then encoded, as without the cache). An entry is used only for the very
    message object it was stored with, so two messages with one id cannot be mixed up.
    """

    __slots__ = ("_bytes", "_order", "max_bytes", "max_entries", "raw")

    def __init__(self, max_entries: int = 16_384, max_bytes: int = 64 << 20) -> None:
        self.raw: dict[str, tuple[Message, bytes]] = {}
        self._order: deque[tuple[str, bytes]] = deque()
        self._bytes = 0
        self.max_entries = max_entries
        self.max_bytes = max_bytes

    def put(self, msg: Message, frame: bytes) -> None:
        mid = msg.header.id
        self.raw[mid] = (msg, frame)
        order = self._order
        order.append((mid, frame))
        self._bytes += len(frame)
        while len(order) > self.max_entries or self._bytes > self.max_bytes:
            old, data = order.popleft()
            self._bytes -= len(data)
            entry = self.raw.get(old)
            if entry is not None and entry[1] is data:
                del self.raw[old]

    def drop(self, msg: Message) -> None:
        """Forget ``msg``'s bytes (it was refused)."""
        entry = self.raw.get(msg.header.id)
        if entry is not None and entry[0] is msg:
            del self.raw[msg.header.id]

    def get(self, msg: Message) -> bytes | None:
        entry = self.raw.get(msg.header.id)
        return entry[1] if entry is not None and entry[0] is msg else None


class _Remote:
    """An endpoint registered by a connection: its window and copies in flight."""

    __slots__ = ("answer_acks", "closed", "flying", "id", "scheduled", "wake", "window")

    def __init__(self, eid: str, window: int, answer_acks: bool = False) -> None:
        self.id = eid
        self.window = window
        self.answer_acks = answer_acks  # NODE-010: its answers acknowledge the requests they answer
        self.flying = 0
        self.scheduled = False
        self.closed = False
        self.wake: Callable[[], None] = _nothing  # the core's wake-up for it (set at registration)


def _nothing() -> None:
    pass


class NodeConnection:
    """One client connection of a :class:`BusNode`."""

    def __init__(self, node: BusNode, conn: StreamConnection) -> None:
        self.node = node
        self.bus = node.bus
        self.conn = conn
        self.codec: Codec = "msgpack" if conn.codec == "msgpack" else "json"
        self.endpoints: dict[str, _Remote] = {}
        self._backlog: deque[bytes] | None = None  # frames behind a backpressure wait
        self._waiting: tuple[Message, Waiter | None] | None = None  # a submission waiting for room
        self._room_task: asyncio.Task[None] | None = None
        self._blocked = False  # the output is over its high-water mark
        self._out: list[bytes] = []  # encoded frames waiting for this turn's write
        self._tasks: set[asyncio.Task[None]] = set()
        self._bucket = node.rate.bucket() if node.rate is not None else None
        self._loop = asyncio.get_running_loop()
        self.dead = False

    # ---------------------------------------------------------------- life

    async def run(self) -> None:
        """Serve the connection until the peer leaves, then take its endpoints out (BUS-037)."""
        from ..transport import TransportError

        self.conn.set_frame_handler(self._on_frame)
        try:
            await self.conn.recv_frame()  # returns only at the end: frames go to _on_frame
        except TransportError:
            pass
        finally:
            self.leave()
            for t in list(self._tasks):
                t.cancel()
            await self.conn.close()

    def leave(self) -> None:
        """Unregister every endpoint of the connection (its pending copies become dead letters)."""
        self.dead = True
        for rem in list(self.endpoints.values()):
            self._drop(rem)

    def _drop(self, rem: _Remote) -> None:
        rem.closed = True
        self.endpoints.pop(rem.id, None)
        if self.node.owners.get(rem.id) is self:
            del self.node.owners[rem.id]
        if self.bus.core.is_registered(rem.id):
            self.bus.unregister(rem.id)

    def _spawn(self, coro: Any) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---------------------------------------------------------------- output

    def _write(self, msg: Message) -> None:
        """Queue one message; the frames queued in one turn of the loop go out in one write."""
        if self.dead:
            return
        out = self._out
        out.append(encode(msg, self.codec))
        if len(out) == 1:
            self._loop.call_soon(self._flush)
        elif len(out) >= FLUSH_EVERY:
            self._flush()

    def _forward(self, msg: Message, wire: _Wire, last: bool) -> None:
        """Queue a copy of an accepted message: the bytes it arrived as when the node has them and
        this connection speaks MessagePack too, else encoded. ``last``: the bytes are not needed
        any more (an answer, written once)."""
        if self.dead:
            return
        frame = wire.get(msg) if self.codec == "msgpack" else None
        if frame is None:
            frame = encode(msg, self.codec)
        elif last:
            del wire.raw[msg.header.id]
        out = self._out
        out.append(frame)
        if len(out) == 1:
            self._loop.call_soon(self._flush)
        elif len(out) >= FLUSH_EVERY:
            self._flush()

    def _flush(self) -> None:
        from ..transport import TransportError

        out, self._out = self._out, []
        if self.dead or not out:
            return
        try:
            ok = self.conn.send_frames_nowait(out)
        except TransportError:
            self.dead = True
            self.conn.abort()  # run() sees the end and cleans up
            return
        if not ok and not self._blocked:
            self._blocked = True
            self._spawn(self._drain())

    async def _drain(self) -> None:
        from ..transport import TransportError

        try:
            await self.conn.drain()
        except TransportError:
            return
        self._blocked = False
        for rem in list(self.endpoints.values()):
            self._pump(rem)

    def reply(self, request: Message, mtype: MessageType, payload: Any) -> None:
        """A direct answer of the node: from bus:system, ``bus.reply`` = true, never acknowledged."""
        h = request.header
        self._write(
            new_message(
                mtype,
                SYSTEM_SOURCE,
                h.source,
                payload,
                correlation_id=h.id,
                priority=h.priority,
                metadata=dict(_REPLY_META),
                clock=self.bus.clock,
            )
        )

    def _answer(self, answer: Message | None) -> None:
        """The answer to a request an endpoint of this connection made: sent at once, outside the
        window, unacknowledged (the bus counted it delivered, as an awaiting requester's answer in
        one process, BUS-022). ``None``: the requester left, the request was cancelled."""
        if answer is not None:
            self._forward(answer, self.node.wire, True)

    def refuse(self, request: Message, err: ProtocolError) -> None:
        self.reply(request, _ERROR, err.to_dict())

    # ---------------------------------------------------------------- delivery (the window)

    def _wake(self, rem: _Remote) -> None:
        """The core has a copy for ``rem``: pump it in the next turn of the loop, once the frames
        of this one are all handled (so one take-and-write covers them all)."""
        if not rem.scheduled and not rem.closed:
            rem.scheduled = True
            node = self.node
            node.woken.append((self, rem))
            if len(node.woken) == 1:
                self._loop.call_soon(node.pump_woken)

    def _pump(self, rem: _Remote) -> None:
        """Send the endpoint's next copies, in delivery order, while its window has room."""
        if rem.closed or self.dead:
            return
        core = self.bus.core
        wire = self.node.wire
        while rem.flying < rem.window and not self._blocked:
            d = core.take(rem.id)
            if d is None:
                core.set_wake(rem.id, rem.wake)
                return
            rem.flying += 1
            self._forward(d.message, wire, False)
            if self.dead:
                return

    # ---------------------------------------------------------------- input

    def _on_frame(self, payload: bytes) -> None:
        if self._backlog is not None:
            self._backlog.append(payload)
            return
        self._handle(payload)

    def _handle(self, payload: bytes) -> None:
        try:
            msg = decode(payload, self.codec)
        except ProtocolError as e:
            self._write(
                new_message(_ERROR, SYSTEM_SOURCE, UNKNOWN_TARGET, e.to_dict(), metadata=dict(_REPLY_META))
            )
            return
        if self._bucket is not None and not self._bucket.take():
            from ..security import rate_limited_error

            self.refuse(msg, rate_limited_error(self._bucket.retry_after()))
            return
        target = msg.header.target
        if target == ACK_TARGET:
            self._ack(msg)
        elif target == SYSTEM_SOURCE:
            self._control(msg)
        else:
            self._submit(msg, payload)

    def _ack(self, msg: Message) -> None:
        h = msg.header
        rem = self.endpoints.get(h.source)
        ok = msg.metadata.get(ACK_KEY)
        if rem is None or h.message_type is not _EVENT or h.correlation_id is None or type(ok) is not bool:
            self.refuse(
                msg,
                InvalidOperation(
                    "an acknowledgement is an Event from an endpoint of this connection to bus:ack, "
                    "with the delivered id as correlation_id and bus.ack true or false"
                ),
            )
            return
        try:
            self.bus.core.settle(rem.id, h.correlation_id, ok)
        except ProtocolError as e:
            self.refuse(msg, e)
            return
        if ok:
            self.node.wire.raw.pop(h.correlation_id, None)
        rem.flying -= 1
        self._pump(rem)

    def _submit(self, msg: Message, frame: bytes) -> None:
        h = msg.header
        meta = msg.metadata
        if meta and REPLY_KEY in meta:
            self.refuse(msg, InvalidOperation(f"the metadata key {REPLY_KEY} is the node's own (NODE-003)"))
            return
        rem = self.endpoints.get(h.source)
        if rem is None:
            self.refuse(
                msg,
                InvalidOperation(
                    f"source {h.source!r} is not an endpoint of this connection: register it first",
                    source=h.source,
                ),
            )
            return
        bus = self.bus
        core = bus.core
        mtype = h.message_type
        if rem.answer_acks and (mtype is _RESPONSE or mtype is _ERROR) and h.correlation_id is not None:
            self._settle_answered(rem, h.correlation_id)
        no_wait = core.config.backpressure_timeout_ns == 0
        waiter = self._answer if mtype is _REQUEST else None
        wire = self.node.wire if self.codec == "msgpack" else None
        if wire is not None:  # before the submission: an answer is written within it
            wire.put(msg, frame)
        try:
            core.submit(msg, final=no_wait, waiter=waiter)
        except Backpressure as e:
            if no_wait:
                if wire is not None:
                    wire.drop(msg)
                self.refuse(msg, e)
                return
            self._backlog = deque()
            self._waiting = (msg, waiter)
            if self._room_task is None:
                self.conn.pause_reading()
                self._room_task = self._loop.create_task(self._wait_for_room())
                self._tasks.add(self._room_task)
                self._room_task.add_done_callback(self._tasks.discard)
        except ProtocolError as e:
            if wire is not None:
                wire.drop(msg)
            self.refuse(msg, e)
        else:
            if mtype is _REQUEST:
                bus._arm()

    def _settle_answered(self, rem: _Remote, request_id: str) -> None:
        """NODE-010: the answer acknowledges the Request copy in flight to ``rem`` that it answers."""
        core = self.bus.core
        copy = core.in_flight(rem.id, request_id)
        if copy is None or copy.header.message_type is not _REQUEST:
            return
        core.settle(rem.id, request_id, True)
        self.node.wire.raw.pop(request_id, None)
        rem.flying -= 1
        self._pump(rem)

    async def _wait_for_room(self) -> None:
        """BUS-035/036: wait for room (up to the backpressure timeout), then handle the parked
        frames in order; a parked submission that must wait again parks the rest again."""
        try:
            while self._waiting is not None:
                (msg, waiter), self._waiting = self._waiting, None
                try:
                    await self.bus._submit(msg, None, None, waiter)
                except ProtocolError as e:
                    self.refuse(msg, e)
                backlog, self._backlog = self._backlog, None
                while backlog and not self.dead:
                    self._handle(backlog.popleft())
                    if self._backlog is not None:  # that frame waits now: the rest stay parked
                        self._backlog = backlog
                        break
        finally:
            self._room_task = None
        if not self.dead:
            self.conn.resume_reading()

    # ---------------------------------------------------------------- control

    def _control(self, msg: Message) -> None:
        h = msg.header
        payload = msg.payload
        op = payload.get("op") if isinstance(payload, dict) else None
        try:
            if h.message_type is not _REQUEST:
                raise InvalidOperation("a message to bus:system is a control Request: payload {op: ...}")
            if op not in OPS:
                raise InvalidOperation(f"unknown op {op!r}; the ops are {', '.join(OPS)}", op=str(op))
            assert isinstance(payload, dict)
            result = getattr(self, f"_op_{op}")(h.source, payload)
        except ProtocolError as e:
            self.refuse(msg, e)
            return
        self.reply(msg, _RESPONSE, result)
        if op in ("register", "window"):
            self._pump(self.endpoints[h.source])

    def _own(self, eid: str) -> _Remote:
        rem = self.endpoints.get(eid)
        if rem is None:
            raise InvalidOperation(f"{eid!r} is not an endpoint of this connection: register it first")
        return rem

    def _op_register(self, eid: str, p: dict[str, Any]) -> dict[str, Any]:
        window = _window(p.get("window"), self.node.default_window)
        answer_acks = p.get("answer_acks", False)
        if type(answer_acks) is not bool:
            raise InvalidOperation(f"answer_acks must be a boolean, got {answer_acks!r}", field="answer_acks")
        self.bus.register(eid)  # BUS-002, BUS-038: INVALID_ENDPOINT_ID, INVALID_OPERATION
        rem = self.endpoints[eid] = _Remote(eid, window, answer_acks)
        rem.wake = partial(self._wake, rem)
        self.node.owners[eid] = self
        return {"endpoint": eid, "window": window, "answer_acks": answer_acks}

    def _op_unregister(self, eid: str, p: dict[str, Any]) -> dict[str, Any]:
        self._drop(self._own(eid))
        return {}

    def _op_subscribe(self, eid: str, p: dict[str, Any]) -> dict[str, Any]:
        self._own(eid)
        self.bus.subscribe(eid, _topic(p))
        return {}

    def _op_unsubscribe(self, eid: str, p: dict[str, Any]) -> dict[str, Any]:
        self._own(eid)
        self.bus.unsubscribe(eid, _topic(p))
        return {}

    def _op_window(self, eid: str, p: dict[str, Any]) -> dict[str, Any]:
        rem = self._own(eid)
        rem.window = _window(p.get("window"), rem.window)
        return {"window": rem.window}

    def _op_ping(self, eid: str, p: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _op_stats(self, eid: str, p: dict[str, Any]) -> dict[str, Any]:
        return {"stats": self.bus.stats().to_dict()}

    def _op_dead_letters(self, eid: str, p: dict[str, Any]) -> dict[str, Any]:
        return {"dead_letters": [dead_letter_to_data(e) for e in self.bus.dead_letters()]}


class BusNode:
    """A :class:`MessageBus` served over listeners (spec/bus.md section 14).

    ``default_window`` is the window of an endpoint registered without one; ``rate`` limits each
    connection's messages (spec/security.md ROB-007: over it a message is refused ``RATE_LIMITED``).
    """

    def __init__(
        self,
        config: BusConfig | None = None,
        *,
        clock: Clock | None = None,
        default_window: int = DEFAULT_WINDOW,
        rate: RateLimit | None = None,
    ) -> None:
        self.bus = MessageBus(config, clock=clock)
        self.default_window = _window(default_window, DEFAULT_WINDOW)
        self.rate = rate
        self.owners: dict[str, NodeConnection] = {}
        self.connections: set[NodeConnection] = set()
        self.wire = _Wire()
        #: endpoints with new copies, pumped in the next turn of the loop
        self.woken: list[tuple[NodeConnection, _Remote]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def pump_woken(self) -> None:
        """Send the woken endpoints' copies and write them at once: this already runs after the
        turn's frames, so waiting one more turn for the write would only add latency."""
        woken, self.woken = self.woken, []
        for nc, rem in woken:
            rem.scheduled = False
            nc._pump(rem)
        for nc, _ in woken:
            if nc._out:
                nc._flush()

    async def handle(self, conn: Transport) -> None:
        """Serve one connection (handshake done) until it ends."""
        from ..transport import StreamConnection

        if not isinstance(conn, StreamConnection):
            await conn.close()
            raise TypeError(f"the bus node serves stream connections, got {type(conn).__name__}")
        nc = NodeConnection(self, conn)
        self.connections.add(nc)
        try:
            await nc.run()
        finally:
            self.connections.discard(nc)

    async def serve(self, listener: Listener, *, once: bool = False) -> None:
        """Accept and serve connections until the listener closes (or after one with ``once``)."""
        from ..transport import TransportError

        try:
            while True:
                try:
                    conn = await listener.accept()
                except TransportError:
                    return
                task = asyncio.create_task(self.handle(conn))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                if once:
                    await task
                    return
        finally:
            await self.close()

    async def close(self) -> None:
        """End every connection (their endpoints leave) and close the bus."""
        for nc in list(self.connections):
            nc.conn.abort()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.bus.close()


def run_node(
    address: str,
    *,
    config: BusConfig | None = None,
    codecs: tuple[str, ...] = ("msgpack", "json"),
    version: tuple[int, int] = (1, 0),
    security: Any = None,
    handshake_timeout: float | None = 5.0,
    rate: RateLimit | None = None,
    default_window: int = DEFAULT_WINDOW,
) -> int:
    """``symphony-ipc serve``: a bus node at ``address`` until SIGINT/SIGTERM (stdio: its stdin's
    end); removes its socket file or FIFO on the way out."""
    import signal

    from ..transport import listen, parse_address

    scheme, _ = parse_address(address)  # a bad address fails before anything starts

    async def main() -> None:
        loop = asyncio.get_running_loop()
        listener = await listen(
            address, codecs=codecs, version=version, security=security, handshake_timeout=handshake_timeout
        )
        node = BusNode(config, default_window=default_window, rate=rate)
        if scheme.name != "stdio":  # a stdio child's stderr is its parent's: stay quiet there
            print(f"symphony-ipc serve: bus node on {address}", file=sys.stderr, flush=True)
        worker = asyncio.create_task(node.serve(listener, once=scheme.name == "stdio"))
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({worker, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await listener.close()
            for t in (worker, stopper):
                t.cancel()
            await asyncio.gather(worker, stopper, return_exceptions=True)
            await node.close()

    asyncio.run(main())
    return 0


__all__ = [
    "ACK_KEY",
    "ACK_TARGET",
    "DEFAULT_WINDOW",
    "OPS",
    "REPLY_KEY",
    "BusNode",
    "NodeConnection",
    "run_node",
]
