"""A client of the bus node (spec/bus.md section 14): one endpoint, over any transport address.

::

    client = await BusClient.connect("unix:/tmp/bus.sock", "worker")
    await client.subscribe("jobs")
    msg = await client.receive()                      # taking it acknowledges it (BUS-030)
    answer = await client.request("service", {"q": 1}, timeout=5.0)
    await client.close()

Copies arrive in the node's delivery order (BUS-027) up to the endpoint's *window* at a time;
the client keeps the ones it holds in priority order too, so :meth:`BusClient.receive` hands
them out highest priority first, in arrival order within a priority. The window opens at the
first :meth:`~BusClient.receive` or :meth:`~BusClient.serve` (``prefetch`` copies): until then
the copies wait at the node, in its priority queue.

:func:`send_sync` and :func:`request_sync` are blocking one-shot helpers for scripts.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from .._codec import Codec, decode, encode
from .._errors import ERROR_CLASSES, EndpointClosed, ErrorCode, ProtocolError, RequestTimeout
from .._model import Message, MessageType, Ttl, new_message
from ._core import SYSTEM_SOURCE, TIMEOUT_KEY
from ._node import ACK_KEY, ACK_TARGET, FLUSH_EVERY, REPLY_KEY

if TYPE_CHECKING:
    from ..transport import StreamConnection

DEFAULT_PREFETCH: Final = 16
_EVENT = MessageType.EVENT
_REQUEST = MessageType.REQUEST
_RESPONSE = MessageType.RESPONSE
_ERROR = MessageType.ERROR

#: Results that are certainly not awaitable (inspect.isawaitable is an ABC check, slow for them).
_PLAIN: Final = frozenset({type(None), dict, list, str, int, float, bool})

Handler = Callable[[Message], Any]
"""A :meth:`BusClient.serve` handler: returns (or awaits to) the answer's payload for a Request;
raising fails the attempt (the node retries the copy, BUS-031)."""


def error_from(msg: Message) -> ProtocolError:
    """The typed error an ``Error`` message from ``bus:system`` carries in its payload."""
    p: dict[str, Any] = msg.payload if isinstance(msg.payload, dict) else {}
    try:
        cls = ERROR_CLASSES[ErrorCode(str(p.get("code")))]
    except ValueError:
        cls = ERROR_CLASSES[ErrorCode.INVALID_OPERATION]
    err = cls.__new__(cls)
    details = p.get("details")
    ProtocolError.__init__(err, str(p.get("message", "")), **(details if isinstance(details, dict) else {}))
    return err


class BusClient:
    """One endpoint of a bus node, over one connection (asyncio). See the module docstring."""

    def __init__(self, conn: StreamConnection, endpoint_id: str, prefetch: int = DEFAULT_PREFETCH) -> None:
        self.conn = conn
        self.id = endpoint_id
        self.prefetch = prefetch
        self.codec: Codec = "msgpack" if conn.codec == "msgpack" else "json"
        self._waiting: dict[str, asyncio.Future[Message]] = {}  # request id -> its answer
        #: (-priority, arrival, message, needs an acknowledgement)
        self._inbox: list[tuple[int, int, Message, bool]] = []
        self._asked: dict[str, None] = {}  # ids of our Requests still waiting for their answer
        self._arrival = itertools.count()
        self._ready: asyncio.Event = asyncio.Event()
        self._open = False  # the window was opened (first receive/serve)
        self._ended: BaseException | None = None
        #: Errors the node sent about messages nobody awaits (a refused fire-and-forget send).
        self.refused: deque[Message] = deque(maxlen=1000)
        self.on_refused: Callable[[Message], None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._out: list[bytes] = []  # encoded frames waiting for this turn's write
        self._deadlines: dict[str, float] = {}  # request id -> when _await gives up (loop time)
        self._sweeper: asyncio.TimerHandle | None = None
        self._blocked = False  # the output was over its high-water mark at the last write
        #: the node took ``answer_acks`` (NODE-010): an answer from serve() acknowledges its request
        self.answer_acks = False

    # ---------------------------------------------------------------- connecting

    @classmethod
    async def connect(
        cls,
        address: str,
        endpoint_id: str,
        *,
        prefetch: int = DEFAULT_PREFETCH,
        codecs: tuple[str, ...] = ("msgpack", "json"),
        timeout: float | None = 5.0,
        secret: bytes | None = None,
    ) -> BusClient:
        """Connect to the node at ``address`` and register ``endpoint_id`` (window closed until
        the first :meth:`receive` or :meth:`serve`)."""
        from ..transport import connect

        conn = await connect(address, codecs=codecs, timeout=timeout, secret=secret)
        client = cls(conn, endpoint_id, prefetch)
        client._start()
        try:
            result = await client.control("register", window=0, answer_acks=True)
            client.answer_acks = result.get("answer_acks") is True  # a node before NODE-010: False
        except BaseException:
            await client.close()
            raise
        return client

    def _start(self) -> None:
        self.conn.set_frame_handler(self._on_frame)
        self._reader = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        from ..transport import TransportError

        try:
            await self.conn.recv_frame()
        except TransportError as e:
            self._end(e)
        except asyncio.CancelledError:
            self._end(EndpointClosed("the client closed"))
            raise

    def _end(self, why: BaseException) -> None:
        if self._ended is None:
            self._ended = why
        err = EndpointClosed(f"the connection to the bus node ended ({why})")
        for f in self._waiting.values():
            if not f.done():
                f.set_exception(err)
        self._waiting.clear()
        self._ready.set()

    # ---------------------------------------------------------------- frames in

    def _on_frame(self, payload: bytes) -> None:
        try:
            msg = decode(payload, self.codec)
        except ProtocolError:
            return  # the node sends only messages; nothing to answer
        h = msg.header
        cid = h.correlation_id
        meta = msg.metadata
        if meta and meta.get(REPLY_KEY) is True:  # the node's direct answer: not a delivery
            fut = self._waiting.pop(cid, None) if cid is not None else None
            if cid is not None:
                self._asked.pop(cid, None)  # a refused request gets no other answer
            if fut is not None and not fut.done():
                fut.set_result(msg)
            else:
                self.refused.append(msg)
                if self.on_refused is not None:
                    self.on_refused(msg)
            return
        mtype = h.message_type
        if (mtype is _RESPONSE or mtype is _ERROR) and cid is not None and cid in self._asked:
            # the answer to one of our requests: sent outside the window, never acknowledged
            del self._asked[cid]
            fut = self._waiting.pop(cid, None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
            else:
                heapq.heappush(self._inbox, (-h.priority, next(self._arrival), msg, False))
                self._ready.set()
            return
        heapq.heappush(self._inbox, (-h.priority, next(self._arrival), msg, True))
        self._ready.set()

    # ---------------------------------------------------------------- frames out

    async def _send(self, msg: Message) -> None:
        if self._put(msg):
            await self.conn.drain()

    def _put(self, msg: Message) -> bool:
        """Queue ``msg``; True when the caller must ``await self.conn.drain()`` (the output was
        over its high-water mark at the last write)."""
        if self._ended is not None:
            raise EndpointClosed(f"the connection to the bus node ended ({self._ended})")
        h = msg.header
        if h.message_type is _REQUEST and h.target != SYSTEM_SOURCE:
            self._asked[h.id] = None
        self._queue(encode(msg, self.codec))
        return self._blocked

    def _queue(self, frame: bytes) -> None:
        """The frames queued in one turn of the loop go out in one write, or every
        :data:`FLUSH_EVERY` frames (so a node can start on them while this process goes on)."""
        out = self._out
        out.append(frame)
        if len(out) == 1:
            asyncio.get_running_loop().call_soon(self._flush)
        elif len(out) >= FLUSH_EVERY:
            self._flush()

    def _flush(self) -> None:
        from ..transport import TransportError

        out, self._out = self._out, []
        if not out or self._ended is not None:
            return
        try:
            self._blocked = not self.conn.send_frames_nowait(out)
        except TransportError as e:
            self._end(e)

    def _ack(self, message_id: str, ok: bool) -> None:
        meta = {ACK_KEY: ok}
        ack = new_message(_EVENT, self.id, ACK_TARGET, None, correlation_id=message_id, metadata=meta)
        self._queue(encode(ack, self.codec))

    async def _await(self, msg: Message, timeout: float | None) -> Message:
        """Send ``msg`` and await the message that answers it; ``TimeoutError`` after ``timeout``
        s (a safety net, checked about once a second: the node answers in time itself)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Message] = loop.create_future()
        mid = msg.header.id
        self._waiting[mid] = fut
        if timeout is not None:
            self._deadlines[mid] = loop.time() + timeout
            if self._sweeper is None:
                self._sweeper = loop.call_later(1.0, self._sweep)
        try:
            if self._put(msg):
                await self.conn.drain()
            return await fut
        finally:
            self._waiting.pop(mid, None)
            self._deadlines.pop(mid, None)

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for mid, deadline in list(self._deadlines.items()):
            fut = self._waiting.get(mid)
            if deadline <= now and fut is not None and not fut.done():
                fut.set_exception(TimeoutError())
        self._sweeper = loop.call_later(1.0, self._sweep) if self._deadlines else None

    async def control(self, op: str, **fields: Any) -> dict[str, Any]:
        """A control request to ``bus:system`` (spec/bus.md section 14); its result, or the error."""
        msg = new_message(_REQUEST, self.id, SYSTEM_SOURCE, {"op": op, **fields})
        try:
            answer = await self._await(msg, 30.0)
        except TimeoutError:
            raise RequestTimeout(f"the node did not answer {op} in 30 s") from None
        if answer.header.message_type is _ERROR:
            raise error_from(answer)
        return answer.payload if isinstance(answer.payload, dict) else {}

    # ---------------------------------------------------------------- the API

    async def subscribe(self, topic: str) -> None:
        await self.control("subscribe", topic=topic)

    async def unsubscribe(self, topic: str) -> None:
        await self.control("unsubscribe", topic=topic)

    async def set_window(self, window: int) -> None:
        """At most ``window`` copies in flight to this client (0: none; the node keeps them)."""
        await self.control("window", window=window)
        self._open = window > 0

    async def ping(self) -> None:
        """Returns once the node has handled every frame sent before it (refusals arrive first)."""
        await self.control("ping")

    async def stats(self) -> dict[str, Any]:
        return dict((await self.control("stats"))["stats"])

    async def dead_letters(self) -> list[dict[str, Any]]:
        return list((await self.control("dead_letters"))["dead_letters"])

    def message(
        self,
        target: str,
        payload: Any = None,
        *,
        message_type: MessageType = _EVENT,
        priority: int = 0,
        ttl: Ttl | None = None,
        correlation_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Message:
        """A message from this endpoint."""
        return new_message(
            message_type,
            self.id,
            target,
            payload,
            priority=priority,
            ttl=ttl,
            correlation_id=correlation_id,
            metadata=metadata,
        )

    async def send(self, message: Message, *, confirm: bool = False) -> Message:
        """Submit ``message`` (its target decides the pattern). Without ``confirm`` it returns once
        written; a refusal arrives later in :attr:`refused`. With ``confirm`` it returns once the
        node accepted it and raises the refusal's error otherwise."""
        if not confirm:
            await self._send(message)
            return message
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[message.header.id] = fut  # a refusal answers it
        try:
            await self._send(message)
            await self.ping()
        finally:
            self._waiting.pop(message.header.id, None)
        if fut.done():
            raise error_from(fut.result())
        return message

    async def publish(
        self, topic: str, payload: Any = None, *, confirm: bool = False, **fields: Any
    ) -> Message:
        """Publish an ``Event`` (or ``message_type=...``) to ``topic:NAME``."""
        return await self.send(self.message(f"topic:{topic}", payload, **fields), confirm=confirm)

    async def request(
        self,
        target: str,
        payload: Any = None,
        *,
        timeout: float = 30.0,
        priority: int = 0,
        metadata: dict[str, Any] | None = None,
    ) -> Message:
        """Send a ``Request`` and await its answer: the ``Response`` (or the responder's ``Error``);
        the bus's own answers and refusals raise their error (``REQUEST_TIMEOUT``, ...)."""
        meta = dict(metadata or {})
        meta[TIMEOUT_KEY] = max(0, int(timeout * 1e9))
        msg = self.message(target, payload, message_type=_REQUEST, priority=priority, metadata=meta)
        try:
            answer = await self._await(msg, timeout + 5.0)  # the node answers in time; a margin
        except TimeoutError:
            raise RequestTimeout(f"no answer to request {msg.header.id} from the node") from None
        finally:
            self._asked.pop(msg.header.id, None)
        if answer.header.source == SYSTEM_SOURCE and answer.header.message_type is _ERROR:
            raise error_from(answer)
        return answer

    async def respond(self, request: Message, payload: Any = None, *, error: bool = False) -> Message:
        """Answer ``request`` with a ``Response`` (or an ``Error``) to its source."""
        h = request.header
        msg = self.message(
            h.source,
            payload,
            message_type=_ERROR if error else _RESPONSE,
            priority=h.priority,
            correlation_id=h.id,
        )
        await self._send(msg)
        return msg

    async def _next(self, timeout: float | None) -> tuple[Message, bool]:
        if not self._open:
            await self.set_window(self.prefetch)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._inbox:
            if self._ended is not None:
                raise EndpointClosed(f"the connection to the bus node ended ({self._ended})")
            self._ready.clear()
            if deadline is None:
                await self._ready.wait()
            else:
                await asyncio.wait_for(self._ready.wait(), max(0.0, deadline - loop.time()))
        _, _, msg, needs_ack = heapq.heappop(self._inbox)
        return msg, needs_ack

    async def receive(self, timeout: float | None = None) -> Message:
        """The next message for this endpoint, highest priority first; taking it acknowledges it
        (BUS-030). ``TimeoutError`` after ``timeout`` s; ``ENDPOINT_CLOSED`` once disconnected."""
        msg, needs_ack = await self._next(timeout)
        if needs_ack:
            self._ack(msg.header.id, True)
        return msg

    async def serve(self, handler: Handler, *, count: int | None = None) -> None:
        """Run ``handler`` on every delivered message (``count`` of them, or until the connection
        ends): it returns (or awaits to) the payload that answers a ``Request``; raising fails
        the attempt (acknowledged ``false``: the node retries, BUS-030/031)."""
        done = 0
        inbox = self._inbox
        while count is None or done < count:
            if inbox and self._open:  # the common case under load: no wait, no coroutine
                _, _, msg, needs_ack = heapq.heappop(inbox)
            else:
                if self._out:  # nothing more to answer now: write the answers at once
                    self._flush()
                try:
                    msg, needs_ack = await self._next(None)
                except EndpointClosed:
                    return
            try:
                result = handler(msg)
                if type(result) not in _PLAIN and inspect.isawaitable(result):
                    result = await result
                ok = True
            except Exception:
                ok = False
            if ok and msg.header.message_type is _REQUEST:
                h = msg.header
                answer = new_message(
                    _RESPONSE, self.id, h.source, result, correlation_id=h.id, priority=h.priority
                )
                if self._put(answer):
                    await self.conn.drain()
                if self.answer_acks:  # the response acknowledged the request (NODE-010)
                    needs_ack = False
            if needs_ack:
                self._ack(msg.header.id, ok)
            done += 1

    async def close(self) -> None:
        """Leave: the node unregisters the endpoint (what is still pending for it becomes a dead
        letter, BUS-037) and the connection closes, after the frames queued so far (the last
        acknowledgements)."""
        self._flush()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        self._end(EndpointClosed("closed"))
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        await self.conn.close()

    async def __aenter__(self) -> BusClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# ---------------------------------------------------------------- blocking helpers


def _run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


def send_sync(
    address: str, endpoint_id: str, message_or_target: Message | str, payload: Any = None, **fields: Any
) -> Message:
    """Connect as ``endpoint_id``, submit one message (confirmed by the node), disconnect."""

    async def main() -> Message:
        client = await BusClient.connect(address, endpoint_id)
        try:
            msg = (
                message_or_target
                if isinstance(message_or_target, Message)
                else client.message(message_or_target, payload, **fields)
            )
            return await client.send(msg, confirm=True)
        finally:
            await client.close()

    result: Message = _run(main())
    return result


def request_sync(
    address: str, endpoint_id: str, target: str, payload: Any = None, *, timeout: float = 30.0, **fields: Any
) -> Message:
    """Connect as ``endpoint_id``, send one request, return its answer, disconnect."""

    async def main() -> Message:
        client = await BusClient.connect(address, endpoint_id)
        try:
            return await client.request(target, payload, timeout=timeout, **fields)
        finally:
            await client.close()

    result: Message = _run(main())
    return result


def message_data(msg: Message) -> Mapping[str, Any]:
    """A message's JSON data-model form (for printing)."""
    from .._codec import message_to_data

    return message_to_data(msg)


__all__ = ["DEFAULT_PREFETCH", "BusClient", "error_from", "message_data", "request_sync", "send_sync"]
