"""Reusable checks every transport must pass (spec/transport.md, profile ``transport``).

In the spirit of ``trio.testing.check_two_way_stream``: each check is a plain function that takes a
*maker* and raises :class:`AssertionError` naming the requirement ids it verifies when the
transport falls short (a timeout or an unexpected transport error counts as falling short).

Two families:

* **in-process checks** (``check_*(maker)``) drive a transport through the interface of section 5
  (``symphony_ipc.transport.Transport`` / ``Listener``): a :class:`TransportMaker` listens at fresh
  addresses, connects, and opens raw byte pipes to play a misbehaving peer;
* **out-of-process checks** (``check_endpoint_*(address)``) need only the address of a running echo
  endpoint (``symphony-ipc serve`` or any implementation's); they speak the wire through
  :class:`RawWire`, a blocking client written here from the spec, independent of the reference.

The framing itself is checked byte by byte by the golden vectors (``fixtures/framing.json``);
:func:`compare_framing_outcome` grades one vector's outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import os
import random
import shlex
import socket
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from symphony_ipc import MessageTooLarge
from symphony_ipc.transport import (
    MAX_FRAME_SIZE,
    Backoff,
    ConnectionPool,
    ConnectionRefused,
    FrameTooLarge,
    HandshakeFailed,
    Listener,
    PeerBroken,
    PeerClosed,
    Pipe,
    ReconnectingClient,
    Transport,
    TransportClosed,
    TransportError,
    connect,
    listen,
    parse_address,
)

T = TypeVar("T")
LEN = struct.Struct(">I")
HELLO_MAX = 4096


def _fail(reqs: str, message: str) -> AssertionError:
    return AssertionError(f"[{reqs}] {message}")


def _check(cond: object, reqs: str, message: str) -> None:
    if not cond:
        raise _fail(reqs, message)


def _run(coro: Coroutine[Any, Any, T], reqs: str, timeout: float) -> T:
    """Run one async check; a timeout or a stray transport error is a failure of ``reqs``."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    try:
        return asyncio.run(bounded())
    except TimeoutError:
        raise _fail(reqs, f"did not complete within {timeout} s") from None
    except TransportError as e:
        raise _fail(reqs, f"unexpected {type(e).__name__}: {e}") from e


# ---------------------------------------------------------------- makers


class TransportMaker(Protocol):
    """What the in-process checks need from a transport."""

    name: str

    def fresh_address(self) -> str:
        """A new address nobody listens at."""
        ...

    async def listen(self, address: str) -> Listener: ...

    async def connect(self, address: str, **options: Any) -> Transport:
        """Connect; ``options`` may hold ``codecs`` and ``version`` (for the handshake checks)."""
        ...

    async def open_raw(self, address: str) -> Pipe:
        """A raw byte pipe to ``address``: no handshake, no framing (to play a misbehaving peer)."""
        ...


@dataclass
class AddressMaker:
    """A :class:`TransportMaker` for any scheme registered with ``symphony_ipc.transport``.

    ``unix`` and ``fifo`` addresses are made in ``directory`` (keep it short: a Unix socket path
    is at most 107 bytes); ``memory`` and ``pipe`` names are unique per call.
    """

    name: str
    directory: str = "/tmp"
    _n: itertools.count[int] = field(default_factory=itertools.count)

    def fresh_address(self) -> str:
        n = next(self._n)
        tag = uuid.uuid4().hex[:8]
        if self.name == "unix":
            return f"unix:{os.path.join(self.directory, f's{n}-{tag}.sock')}"
        if self.name == "fifo":
            return f"fifo:{os.path.join(self.directory, f'f{n}-{tag}')}"
        return f"{self.name}:{tag}-{n}"

    async def listen(self, address: str) -> Listener:
        return await listen(address)

    async def connect(self, address: str, **options: Any) -> Transport:
        return await connect(address, **options)

    async def open_raw(self, address: str) -> Pipe:
        scheme, target = parse_address(address)
        return await scheme.open(target, 5.0)


# ---------------------------------------------------------------- helpers


def _hello(codecs: Iterable[str] = ("json",), version: str = "1.0") -> bytes:
    body = json.dumps({"symphony": version, "codecs": list(codecs)}, separators=(",", ":")).encode()
    return LEN.pack(len(body)) + body


def _frame(payload: bytes) -> bytes:
    return LEN.pack(len(payload)) + payload


class RawPeer:
    """A peer that only moves bytes, over a transport's own :class:`Pipe` (asyncio)."""

    def __init__(self, pipe: Pipe) -> None:
        self.pipe = pipe
        self.buf = bytearray()
        self.eof = False
        self.broken = False
        self._event = asyncio.Event()
        pipe.start(self)

    def data_received(self, data: bytes | memoryview) -> None:
        self.buf += data
        self._event.set()

    def eof_received(self) -> None:
        self.eof = True
        self._event.set()

    def pipe_broken(self, exc: BaseException) -> None:
        self.broken = self.eof = True
        self._event.set()

    async def send(self, data: bytes) -> None:
        self.pipe.write(data)
        await self.pipe.drain(0)

    async def _need(self, n: int) -> bool:
        while len(self.buf) < n and not self.eof:
            self._event.clear()
            await self._event.wait()
        return len(self.buf) >= n

    async def read_frame(self) -> bytes | None:
        """The next frame's payload, or None at end of stream."""
        if not await self._need(4):
            return None
        n = LEN.unpack_from(self.buf)[0]
        if not await self._need(4 + n):
            return None
        payload = bytes(self.buf[4 : 4 + n])
        del self.buf[: 4 + n]
        return payload

    async def handshake(self, codecs: Iterable[str] = ("json",)) -> dict[str, Any]:
        await self.send(_hello(codecs))
        welcome = await self.read_frame()
        if welcome is None:
            raise PeerClosed("no welcome")
        obj: dict[str, Any] = json.loads(welcome)
        return obj

    async def wait_eof(self) -> None:
        while not self.eof:
            self._event.clear()
            await self._event.wait()

    def close(self) -> None:
        self.pipe.close()


class _EchoServer:
    """An echo server on a listener, recording every frame it receives (for the checks)."""

    def __init__(self, listener: Listener, *, echo: bool = True) -> None:
        self.listener = listener
        self.received: list[bytes] = []
        self.conns: list[Transport] = []
        self._echo = echo
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepter = asyncio.create_task(self._accept())

    async def _accept(self) -> None:
        while True:
            try:
                conn = await self.listener.accept()
            except TransportError:
                return
            self.conns.append(conn)
            t = asyncio.create_task(self._serve(conn))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    async def _serve(self, conn: Transport) -> None:
        try:
            while True:
                f = await conn.recv_frame()
                self.received.append(f)
                if self._echo:
                    await conn.send_frame(f)
        except TransportError:
            pass
        finally:
            await conn.close()

    async def stop(self) -> None:
        """Close the listener and every connection (a server going away)."""
        await self.listener.close()
        for c in self.conns:
            await c.close()
        self.conns.clear()
        self._accepter.cancel()
        tasks = [self._accepter, *self._tasks]
        await asyncio.gather(*tasks, return_exceptions=True)


async def _pair(maker: TransportMaker, address: str | None = None) -> tuple[Listener, Transport, Transport]:
    address = address or maker.fresh_address()
    listener = await maker.listen(address)
    client_task = asyncio.ensure_future(maker.connect(address))
    server = await listener.accept()
    client = await client_task
    return listener, client, server


# ---------------------------------------------------------------- in-process checks


def check_handshake(maker: TransportMaker, *, timeout: float = 20.0) -> None:
    """FRM-010, FRM-011, FRM-012, TRN-010: both sides agree on the codec after the handshake; a
    client offering only json gets json; a client of major 2 is refused with
    INVALID_PROTOCOL_VERSION and the listener keeps serving others."""

    async def body() -> None:
        listener, client, server = await _pair(maker)
        try:
            _check(client.codec == server.codec, "FRM-011", f"codecs differ: {client.codec} / {server.codec}")
            _check(client.codec in ("msgpack", "json"), "FRM-011", f"unknown codec {client.codec!r}")
            _check(
                client.peer_version[0] == 1 and server.peer_version[0] == 1, "FRM-011", "peer major is not 1"
            )
            accepting = asyncio.ensure_future(listener.accept())
            only_json = await maker.connect(listener.address, codecs=("json",))
            json_server = await accepting
            _check(
                only_json.codec == "json" == json_server.codec, "FRM-011", "json-only client did not get json"
            )
            await only_json.close()
            await json_server.close()
            try:
                bad = await maker.connect(listener.address, version=(2, 0))
            except HandshakeFailed as e:
                _check(
                    e.code.value == "INVALID_PROTOCOL_VERSION", "FRM-012", f"refused with {e.code}, not IPV"
                )
            else:
                await bad.close()
                raise _fail("FRM-012", "a client of major 2 was accepted")
            accepting = asyncio.ensure_future(listener.accept())
            again = await maker.connect(listener.address)
            srv2 = await accepting
            await again.send_frame(b"still serving")
            _check(
                await srv2.recv_frame() == b"still serving", "TRN-010", "listener broken by a refused client"
            )
            await again.close()
            await srv2.close()
        finally:
            await client.close()
            await server.close()
            await listener.close()

    _run(body(), "FRM-010, FRM-011, FRM-012, TRN-010", timeout)


def check_echo(maker: TransportMaker, *, timeout: float = 20.0) -> None:
    """FRM-001, FRM-007: frames of many sizes cross both ways complete and unmodified."""
    rng = random.Random(4)
    sizes = [1, 2, 3, 4, 5, 255, 256, 4096, 65535, 65536, 65537, 1 << 20]

    async def body() -> None:
        listener, client, server = await _pair(maker)
        try:
            for i, size in enumerate(sizes):
                payload = rng.randbytes(size)
                sender, receiver = (client, server) if i % 2 == 0 else (server, client)
                await sender.send_frame(payload)
                got = await receiver.recv_frame()
                _check(
                    got == payload, "FRM-007", f"a {size}-byte frame arrived as {len(got)} different bytes"
                )
        finally:
            await client.close()
            await server.close()
            await listener.close()

    _run(body(), "FRM-001, FRM-007", timeout)


def check_ordering(maker: TransportMaker, *, frames: int = 1000, timeout: float = 30.0) -> None:
    """FRM-007: ``frames`` pipelined frames arrive once each, in order, both ways (echoed)."""

    async def body() -> None:
        listener = await maker.listen(maker.fresh_address())
        srv = _EchoServer(listener)
        client = await maker.connect(listener.address)
        try:
            payloads = [f"frame {i:06d} ".encode() * (1 + i % 7) for i in range(frames)]

            async def send_all() -> None:
                for p in payloads:
                    await client.send_frame(p)

            sender = asyncio.ensure_future(send_all())
            got = [await client.recv_frame() for _ in range(frames)]
            await sender
            for where, seq in (("server", srv.received), ("client", got)):
                _check(len(seq) == frames, "FRM-007", f"{where} received {len(seq)} of {frames} frames")
                for i, (a, b) in enumerate(zip(seq, payloads, strict=True)):
                    _check(
                        a == b, "FRM-007", f"{where}: frame {i} is not the frame sent {i}th (lost/reordered)"
                    )
        finally:
            await client.close()
            await srv.stop()

    _run(body(), "FRM-007", timeout)


def check_max_size(maker: TransportMaker, *, timeout: float = 30.0) -> None:
    """FRM-002: a frame of exactly 16 MiB crosses intact; one byte more is refused by the sender with
    a FrameTooLarge that is a MessageTooLarge (MESSAGE_TOO_LARGE), and the connection stays usable."""

    async def body() -> None:
        listener, client, server = await _pair(maker)
        try:
            big = bytes(range(256)) * (MAX_FRAME_SIZE // 256)
            sending = asyncio.ensure_future(client.send_frame(big))
            got = await server.recv_frame()
            await sending
            _check(got == big, "FRM-002", "the 16 MiB frame did not arrive intact")
            try:
                await client.send_frame(big + b"!")
            except FrameTooLarge as e:
                _check(isinstance(e, MessageTooLarge), "FRM-002", "FrameTooLarge is not a MessageTooLarge")
                _check(e.code.value == "MESSAGE_TOO_LARGE", "FRM-002", f"code {e.code}")
            else:
                raise _fail("FRM-002", "a 16 MiB + 1 frame was sent")
            await client.send_frame(b"after")
            _check(await server.recv_frame() == b"after", "FRM-002", "connection unusable after the refusal")
        finally:
            await client.close()
            await server.close()
            await listener.close()

    _run(body(), "FRM-002", timeout)


async def _raw_session(maker: TransportMaker, listener: Listener) -> tuple[RawPeer, Transport]:
    peer = RawPeer(await maker.open_raw(listener.address))
    accepting = asyncio.ensure_future(listener.accept())
    welcome = await peer.handshake()
    _check(welcome.get("codec") == "json", "FRM-011", f"welcome {welcome!r}")
    return peer, await accepting


def check_oversize_refused(maker: TransportMaker, *, timeout: float = 20.0) -> None:
    """FRM-003, TRN-012: a received length over 16 MiB is refused at once with FrameTooLarge (no
    payload sent at all), frames before it are delivered, and the receiver closes: the peer sees
    end of stream and no further frame."""

    async def body() -> None:
        listener = await maker.listen(maker.fresh_address())
        peer, server = await _raw_session(maker, listener)
        try:
            await peer.send(_frame(b'{"before":1}') + LEN.pack(MAX_FRAME_SIZE + 1))
            _check(await server.recv_frame() == b'{"before":1}', "FRM-003", "the frame before was lost")
            try:
                got = await server.recv_frame()
            except FrameTooLarge as e:
                _check(e.code.value == "MESSAGE_TOO_LARGE", "FRM-003", f"code {e.code}")
            else:
                raise _fail("FRM-003", f"an oversized length delivered a frame of {len(got)} bytes")
            await peer.wait_eof()
            _check(not peer.buf, "FRM-003", "the receiver sent bytes after refusing (post-handshake)")
        finally:
            peer.close()
            await server.close()
            await listener.close()

    _run(body(), "FRM-003, TRN-012", timeout)


def check_split_writes(maker: TransportMaker, *, timeout: float = 30.0) -> None:
    """FRM-005: a hello and frames written one byte per write still give the same frames."""

    async def body() -> None:
        listener = await maker.listen(maker.fresh_address())
        peer = RawPeer(await maker.open_raw(listener.address))
        accepting = asyncio.ensure_future(listener.accept())
        payloads = [b'{"a":1}', bytes(range(40)), b"x" * 300]
        stream = _hello() + b"".join(_frame(p) for p in payloads[:2]) + LEN.pack(0) + _frame(payloads[2])
        server: Transport | None = None
        try:
            for i in range(len(stream)):
                await peer.send(stream[i : i + 1])
                await asyncio.sleep(0)
            server = await accepting
            for p in payloads:
                got = await server.recv_frame()
                _check(got == p, "FRM-005", f"byte-by-byte writes gave {got[:40]!r}, not {p[:40]!r}")
        finally:
            peer.close()
            if server is not None:
                await server.close()
            await listener.close()

    _run(body(), "FRM-005", timeout)


def check_peer_close(maker: TransportMaker, *, timeout: float = 20.0) -> None:
    """FRM-006, TRN-012, TRN-014: a peer leaving inside a frame gives the frames before it, then
    PeerBroken (never the partial frame), and again on every later recv; a peer leaving at a frame
    boundary gives the frames, then PeerClosed."""

    async def body() -> None:
        listener = await maker.listen(maker.fresh_address())
        try:
            for tail, expected in ((LEN.pack(100) + b"0123456789", PeerBroken), (b"", PeerClosed)):
                peer, server = await _raw_session(maker, listener)
                await peer.send(_frame(b'{"complete":true}') + tail)
                peer.close()
                _check(await server.recv_frame() == b'{"complete":true}', "TRN-014", "complete frame lost")
                for _ in range(2):
                    try:
                        got = await server.recv_frame(timeout=10)
                    except expected:
                        pass
                    except TransportError as e:
                        raise _fail("FRM-006", f"{type(e).__name__} instead of {expected.__name__}") from e
                    else:
                        raise _fail("FRM-006", f"a frame of {len(got)} bytes instead of {expected.__name__}")
                await server.close()
        finally:
            await listener.close()

    _run(body(), "FRM-006, TRN-012, TRN-014", timeout)


def check_slow_reader(
    maker: TransportMaker, *, frames: int = 64, size: int = 256 << 10, timeout: float = 60.0
) -> None:
    """TRN-013: while the receiver does not read, the sender waits (bounded buffering); once it
    reads, every frame arrives in order."""

    async def body() -> None:
        listener, client, server = await _pair(maker)
        sent = 0
        try:

            async def send_all() -> None:
                nonlocal sent
                for i in range(frames):
                    await client.send_frame(i.to_bytes(4, "big") * (size // 4))
                    sent += 1

            sender = asyncio.ensure_future(send_all())
            stalled, last = 0, -1
            while not sender.done() and stalled < 5:  # wait until the sender makes no progress
                await asyncio.sleep(0.02)
                stalled = stalled + 1 if sent == last else 0
                last = sent
            _check(
                not sender.done(),
                "TRN-013",
                f"all {frames * size} bytes were sent to a receiver reading nothing: no back-pressure",
            )
            for i in range(frames):
                got = await server.recv_frame()
                _check(got == i.to_bytes(4, "big") * (size // 4), "TRN-013", f"frame {i} lost or reordered")
            await sender
        finally:
            await client.close()
            await server.close()
            await listener.close()

    _run(body(), "TRN-013", timeout)


def check_many_clients(
    maker: TransportMaker, *, clients: int = 50, frames: int = 20, timeout: float = 60.0
) -> None:
    """TRN-015: many clients at once, each gets back exactly its own frames, in order."""

    async def body() -> None:
        listener = await maker.listen(maker.fresh_address())
        srv = _EchoServer(listener)

        async def one(k: int) -> None:
            conn = await maker.connect(listener.address)
            try:
                for i in range(frames):
                    await conn.send_frame(f"client {k} frame {i}".encode())
                for i in range(frames):
                    got = await conn.recv_frame()
                    _check(got == f"client {k} frame {i}".encode(), "TRN-015", f"client {k} got {got!r}")
            finally:
                await conn.close()

        try:
            await asyncio.gather(*(one(k) for k in range(clients)))
            _check(len(srv.received) == clients * frames, "TRN-015", f"server got {len(srv.received)} frames")
        finally:
            await srv.stop()

    _run(body(), "TRN-015", timeout)


def check_close(maker: TransportMaker, *, timeout: float = 20.0) -> None:
    """TRN-011, TRN-012: close is idempotent on both sides and on the listener; a waiting recv is
    woken with TransportClosed; use after close raises TransportClosed; the peer sees PeerClosed;
    connecting after the listener closed is refused."""

    async def body() -> None:
        address = maker.fresh_address()
        listener, client, server = await _pair(maker, address)
        waiting = asyncio.ensure_future(client.recv_frame())
        await asyncio.sleep(0.01)
        await client.close()
        await client.close()
        try:
            await waiting
        except TransportClosed:
            pass
        except BaseException as e:
            raise _fail("TRN-011", f"a waiting recv_frame got {type(e).__name__}, not TransportClosed") from e
        else:
            raise _fail("TRN-011", "a waiting recv_frame returned a frame after close")
        for op in (lambda: client.send_frame(b"x"), lambda: client.recv_frame()):
            try:
                await op()
            except TransportClosed:
                pass
            except TransportError as e:
                raise _fail("TRN-012", f"use after close raised {type(e).__name__}") from e
            else:
                raise _fail("TRN-012", "use after close succeeded")
        try:
            await server.recv_frame(timeout=10)
        except PeerClosed:
            pass
        except TransportError as e:
            raise _fail("TRN-012", f"the peer of a clean close saw {type(e).__name__}, not PeerClosed") from e
        await server.close()
        await server.close()
        await listener.close()
        await listener.close()
        try:
            await listener.accept()
        except TransportClosed:
            pass
        else:
            raise _fail("TRN-011", "accept succeeded on a closed listener")
        try:
            late = await maker.connect(address)
        except ConnectionRefused:
            pass
        else:
            await late.close()
            raise _fail("TRN-012", "connecting after the listener closed was not refused")

    _run(body(), "TRN-011, TRN-012", timeout)


def open_fds() -> int:
    """How many file descriptors this process has open (Linux: /proc/self/fd)."""
    return len(os.listdir("/proc/self/fd")) - 1  # minus the one listdir itself holds


def child_processes() -> list[int]:
    """Live or zombie children of this process (Linux: /proc/*/stat)."""
    me, kids = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(b")", 1)[1].split()[1]) == me:
                kids.append(int(entry))
    return kids


def _address_files(address: str) -> list[str]:
    scheme, _, target = address.partition(":")
    if scheme == "unix" and os.path.lexists(target):
        return [target]
    if scheme == "fifo" and os.path.isdir(target):
        return [os.path.join(target, n) for n in os.listdir(target)]
    return []


def check_no_leaks(maker: TransportMaker, *, cycles: int = 1000, timeout: float = 120.0) -> None:
    """TRN-016, TRN-011: after ``cycles`` connect/echo/close cycles and closing the listener, open
    file descriptors, child processes and tasks are back to their baseline and the address left
    no file behind."""

    async def body() -> None:
        address = maker.fresh_address()
        listener = await maker.listen(address)
        srv = _EchoServer(listener)
        for _ in range(3):  # warm up lazily created resources (read buffers, the loop's self-pipe)
            c = await maker.connect(address)
            await c.close()
        await asyncio.sleep(0.05)
        gc.collect()
        fds, tasks, kids = open_fds(), len(asyncio.all_tasks()), len(child_processes())
        for i in range(cycles):
            c = await maker.connect(address)
            await c.send_frame(b"cycle %d" % i)
            _check(await c.recv_frame() == b"cycle %d" % i, "TRN-016", "echo failed during the cycles")
            await c.close()
        for _ in range(500):  # the server side closes when it sees our end of stream
            if not srv._tasks:
                break
            await asyncio.sleep(0.01)
        gc.collect()
        after_fds, after_tasks, after_kids = open_fds(), len(asyncio.all_tasks()), len(child_processes())
        _check(after_fds <= fds, "TRN-016", f"{after_fds - fds} file descriptors leaked over {cycles} cycles")
        _check(after_tasks <= tasks, "TRN-016", f"{after_tasks - tasks} tasks leaked over {cycles} cycles")
        _check(
            after_kids <= kids, "TRN-016", f"{after_kids - kids} child processes left over {cycles} cycles"
        )
        await srv.stop()
        await asyncio.sleep(0)
        gc.collect()
        _check(not _address_files(address), "TRN-011", f"files left behind: {_address_files(address)}")

    _run(body(), "TRN-016, TRN-011", timeout)


ReconnectorFactory = Callable[[Callable[[], Awaitable[Transport]], Callable[[float], Awaitable[None]]], Any]


def _default_reconnector(
    connect_fn: Callable[[], Awaitable[Transport]], sleep: Callable[[float], Awaitable[None]]
) -> ReconnectingClient:
    return ReconnectingClient(
        connect_fn, Backoff(base=0.002, factor=2.0, max_delay=0.25, max_retries=12), sleep=sleep
    )


def check_reconnection(
    maker: TransportMaker,
    *,
    restarts: int = 20,
    requests: int = 5,
    downtime: float = 0.05,
    reconnector: ReconnectorFactory = _default_reconnector,
    timeout: float = 90.0,
) -> None:
    """TRN-030, TRN-032, TRN-033: a reconnecting client rides out ``restarts`` server
    restarts: at least 99% of reconnections succeed, the delays between failed attempts are
    positive and grow, requests in flight at a restart are answered once or reported failed, and
    the server never receives a request twice.

    ``reconnector(connect, sleep)`` builds the client under test: it must offer ``async
    request(payload, timeout)`` and ``close()`` and sleep only through ``sleep``.
    """

    async def body() -> None:
        address = maker.fresh_address()
        srv = _EchoServer(await maker.listen(address))
        received: list[bytes] = []  # every frame the successive servers received
        outages: list[list[float]] = [[]]

        async def sleep(d: float) -> None:
            outages[-1].append(d)
            await asyncio.sleep(d)

        client = reconnector(lambda: maker.connect(address), sleep)
        answered: list[bytes] = []
        failed: list[bytes] = []
        recovered = 0
        seq = itertools.count()

        async def request() -> bool:
            payload = b"request %d" % next(seq)
            try:
                got = await client.request(payload, 10.0)
            except TransportError:
                failed.append(payload)
                return False
            _check(got == payload, "TRN-032", f"request {payload!r} answered with {got!r}")
            answered.append(payload)
            return True

        async def restart() -> None:
            nonlocal srv
            await asyncio.sleep(downtime)
            srv = _EchoServer(await maker.listen(address))

        try:
            for _ in range(requests):
                await request()
            for _ in range(restarts):
                in_flight = asyncio.ensure_future(request())
                await asyncio.sleep(0)
                await srv.stop()
                received.extend(srv.received)
                await in_flight
                outages.append([])
                restarting = asyncio.ensure_future(restart())
                recovered += await request()  # issued while the server is down
                await restarting
                for _ in range(requests - 1):
                    await request()
        finally:
            await client.close()
            await srv.stop()
            received.extend(srv.received)
        rate = recovered / restarts
        _check(
            rate >= 0.99, "TRN-033", f"only {recovered} of {restarts} reconnections succeeded ({rate:.0%})"
        )
        for delays in outages:
            _check(all(d > 0 for d in delays), "TRN-030", f"retried without waiting: delays {delays}")
        waited = [o for o in outages if len(o) >= 3]
        _check(waited, "TRN-030", "no outage needed three retries: the backoff cannot be seen growing")
        for delays in waited:
            _check(max(delays) > 1.5 * min(delays), "TRN-030", f"delays do not grow: {delays}")
        _check(len(received) == len(set(received)), "TRN-032", "the server received a request twice")
        _check(set(answered) <= set(received), "TRN-032", "a request was answered but never received")
        _check(not set(answered) & set(failed), "TRN-032", "a request was both answered and reported failed")
        total = requests + restarts * (requests + 1)
        _check(len(answered) + len(failed) == total, "TRN-032", "a request was neither answered nor failed")

    _run(body(), "TRN-030, TRN-032, TRN-033", timeout)


def check_no_duplicates(maker: TransportMaker, *, restarts: int = 10, timeout: float = 60.0) -> None:
    """TRN-032: across server restarts, every frame the server receives was sent once; none twice."""

    async def body() -> None:
        address = maker.fresh_address()
        seen: list[bytes] = []
        srv = _EchoServer(await maker.listen(address))
        client = ReconnectingClient(lambda: maker.connect(address), Backoff(base=0.002, max_delay=0.1))
        try:
            for r in range(restarts):
                for i in range(20):
                    with contextlib.suppress(TransportError):
                        await client.request(b"r%d-%d" % (r, i), 5.0)
                seen += srv.received
                await srv.stop()
                srv = _EchoServer(await maker.listen(address))
        finally:
            await client.close()
            seen += srv.received
            await srv.stop()
        _check(len(seen) == len(set(seen)), "TRN-032", "the server received a frame twice")

    _run(body(), "TRN-032", timeout)


PoolFactory = Callable[[Callable[[], Awaitable[Transport]], int], Any]


def _default_pool(connect_fn: Callable[[], Awaitable[Transport]], max_size: int) -> ConnectionPool:
    return ConnectionPool(connect_fn, max_size=max_size, idle_timeout=60.0, max_lifetime=600.0)


def check_pool_reuse(
    maker: TransportMaker,
    *,
    acquisitions: int = 1000,
    workers: int = 4,
    pool: PoolFactory = _default_pool,
    timeout: float = 60.0,
) -> None:
    """TRN-020, TRN-023: in a steady workload (``workers`` users, ``acquisitions`` acquisitions of a
    pool of ``workers`` connections to a live echo server) every request is answered, the pool
    never holds more than its maximum, and at least 95% of acquisitions reuse a connection.

    ``pool(connect, max_size)`` builds the pool under test: ``acquire()``, ``release(conn)``,
    ``close()``, ``stats.acquired``, ``stats.reused``, ``size``.
    """

    async def body() -> None:
        address = maker.fresh_address()
        srv = _EchoServer(await maker.listen(address))
        p = pool(lambda: maker.connect(address), workers)
        peak = 0
        left = itertools.count()

        async def worker(w: int) -> None:
            nonlocal peak
            while next(left) < acquisitions:
                conn = await p.acquire()
                peak = max(peak, p.size)
                try:
                    await conn.send_frame(b"w%d" % w)
                    _check(await conn.recv_frame() == b"w%d" % w, "TRN-023", "wrong answer through the pool")
                finally:
                    await p.release(conn)

        try:
            await asyncio.gather(*(worker(w) for w in range(workers)))
            acquired, reused = p.stats.acquired, p.stats.reused
        finally:
            await p.close()
            await srv.stop()
        _check(
            acquired == acquisitions, "TRN-023", f"stats count {acquired} acquisitions, not {acquisitions}"
        )
        _check(peak <= workers, "TRN-020", f"the pool held {peak} connections, over its maximum {workers}")
        rate = reused / acquired
        _check(rate >= 0.95, "TRN-023", f"reuse rate {rate:.1%} is under 95%")

    _run(body(), "TRN-020, TRN-023", timeout)


class NotApplicable(Exception):
    """A check does not apply to this transport (e.g. a FIFO check on a socket transport)."""


def _names_address(message: str, address: str) -> bool:
    return address in message or address.rstrip(":") + ":" in message


def check_addresses(maker: TransportMaker, *, timeout: float = 10.0) -> None:
    """TRN-001: an unknown scheme, an empty target and (on ``unix:``) a path over 107 bytes are
    refused by both listen and connect with an error that names the address, and nothing is
    created meanwhile."""
    scheme = maker.fresh_address().partition(":")[0]
    bad = [f"nosuch{uuid.uuid4().hex[:6]}:x", f"{scheme}:"]
    long_dir = ""
    if scheme == "unix":
        long_dir = os.path.join(getattr(maker, "directory", "/tmp"), f"long-{uuid.uuid4().hex[:8]}")
        bad.append(f"unix:{os.path.join(long_dir, 'x' * 200)}")

    async def body() -> None:
        for address in bad:
            for op in ("listen", "connect"):
                try:
                    got = await getattr(maker, op)(address)
                except AssertionError:
                    raise
                except Exception as e:
                    _check(
                        _names_address(str(e), address),
                        "TRN-001",
                        f"{op}({address[:60]!r}...) refused with an error that does not name it: {e}",
                    )
                else:
                    await got.close()
                    raise _fail("TRN-001", f"{op}({address[:60]!r}...) was accepted")
        _check(not os.path.lexists(long_dir), "TRN-001", f"{long_dir} was created for an invalid address")

    _run(body(), "TRN-001", timeout)


def check_fifo_files(maker: TransportMaker, *, settle: float = 0.3, timeout: float = 20.0) -> None:
    """TRN-004: a client finding no reader on ``DIR/connect`` reports the connection refused; a
    FIFO server opens no symlink or regular file a client names as its pair, and keeps serving."""
    address = maker.fresh_address()
    if not address.startswith("fifo:"):
        raise NotApplicable(f"{address.partition(':')[0]}: not a FIFO transport")
    directory = address.partition(":")[2]

    async def body() -> None:
        os.mkdir(directory, 0o700)
        try:
            os.mkfifo(os.path.join(directory, "connect"), 0o600)
            try:
                late = await maker.connect(address)
            except ConnectionRefused:
                pass
            except TransportError as e:
                raise _fail("TRN-004", f"no reader on DIR/connect gave {type(e).__name__}: {e}") from e
            else:
                await late.close()
                raise _fail("TRN-004", "connected with no reader on DIR/connect")
        finally:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, "connect"))
            os.rmdir(directory)
        srv = _EchoServer(await maker.listen(address))
        bait_dir = directory + "-bait"
        os.mkdir(bait_dir, 0o700)
        try:
            c2s, s2c = os.path.join(bait_dir, "c2s"), os.path.join(bait_dir, "s2c")
            with open(c2s, "wb") as f:
                f.write(_hello() + _frame(b"through a regular file"))
            open(s2c, "wb").close()
            for kind in ("symlink", "regular"):
                ident = f"bait{kind}{uuid.uuid4().hex[:6]}"
                pair = [os.path.join(directory, f"{ident}.{d}") for d in ("c2s", "s2c")]
                if kind == "symlink":
                    os.symlink(c2s, pair[0])
                    os.symlink(s2c, pair[1])
                else:
                    for p in pair:
                        with open(p, "wb") as f:
                            f.write(_hello())
                fd = os.open(os.path.join(directory, "connect"), os.O_WRONLY | os.O_NONBLOCK)
                try:
                    os.write(fd, ident.encode() + b"\n")
                finally:
                    os.close(fd)
                await asyncio.sleep(settle)
                for p in pair:
                    with contextlib.suppress(OSError):
                        os.unlink(p)
            _check(os.path.getsize(s2c) == 0, "TRN-004", "the server wrote into a file a symlink named")
            _check(not srv.received, "TRN-004", f"the server read frames from non-FIFOs: {srv.received}")
            client = await maker.connect(address)
            try:
                await client.send_frame(b"still serving")
                _check(await client.recv_frame() == b"still serving", "TRN-004", "not served after bait")
            finally:
                await client.close()
        finally:
            await srv.stop()
            for name in os.listdir(bait_dir):
                os.unlink(os.path.join(bait_dir, name))
            os.rmdir(bait_dir)

    _run(body(), "TRN-004", timeout)


class _Clock:
    """A manual clock for the pool checks (idle and lifetime without waiting)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


PoolMaker = Callable[..., Any]


def _reference_pool(connect_fn: Callable[[], Awaitable[Transport]], **options: Any) -> ConnectionPool:
    return ConnectionPool(connect_fn, **options)


def check_pool_expiry(
    maker: TransportMaker, *, pool: PoolMaker = _reference_pool, timeout: float = 20.0
) -> None:
    """TRN-021: a pool does not hand out a connection that is closed, that failed its health
    check, idle past ``idle_timeout`` or older than ``max_lifetime``; it closes them and keeps
    ``min_size`` open.

    ``pool(connect, min_size=, max_size=, idle_timeout=, max_lifetime=, health_check=, clock=)``
    builds the pool under test (the reference's :class:`ConnectionPool` by default).
    """

    async def body() -> None:
        address = maker.fresh_address()
        srv = _EchoServer(await maker.listen(address))
        clock = _Clock()
        bad: set[int] = set()

        async def healthy(conn: Transport) -> bool:
            return id(conn) not in bad

        p = pool(
            lambda: maker.connect(address),
            min_size=1,
            max_size=2,
            idle_timeout=10.0,
            max_lifetime=100.0,
            health_check=healthy,
            clock=clock,
        )
        try:
            await p.start()
            _check(p.size >= 1, "TRN-021", f"min_size 1, the started pool holds {p.size}")
            for why in ("idle", "lifetime", "closed", "unhealthy"):
                old = await p.acquire()
                await old.send_frame(b"before")
                _check(await old.recv_frame() == b"before", "TRN-021", "no echo through the pool")
                if why == "lifetime":  # keep it busy: only its age grows past max_lifetime
                    clock.now += 101.0
                    await p.release(old)
                    clock.now += 1.0
                else:
                    await p.release(old)
                    if why == "idle":
                        clock.now += 11.0
                    elif why == "closed":
                        await old.close()
                    else:
                        bad.add(id(old))
                new = await p.acquire()
                _check(new is not old, "TRN-021", f"a connection {why} was handed out again")
                _check(not old.is_open, "TRN-021", f"a connection {why} was not closed by the pool")
                await new.send_frame(b"after")
                _check(await new.recv_frame() == b"after", "TRN-021", "the fresh connection does not echo")
                await p.release(new)
                _check(p.size >= 1, "TRN-021", f"min_size 1, the pool holds {p.size} after discarding")
        finally:
            await p.close()
            await srv.stop()

    _run(body(), "TRN-021", timeout)


def check_pool_release(
    maker: TransportMaker, *, pool: PoolMaker = _reference_pool, timeout: float = 20.0
) -> None:
    """TRN-022: a connection released as broken, or with a received frame nobody read, is closed
    and not handed out again; the next user never reads the stale frame."""

    async def body() -> None:
        address = maker.fresh_address()
        srv = _EchoServer(await maker.listen(address))
        p = pool(lambda: maker.connect(address), max_size=1, idle_timeout=60.0, max_lifetime=600.0)
        try:
            old = await p.acquire()
            await p.release(old, broken=True)
            _check(not old.is_open, "TRN-022", "a connection released as broken was not closed")
            new = await p.acquire()
            _check(new is not old, "TRN-022", "a connection released as broken was handed out again")
            await new.send_frame(b"stale")
            for _ in range(200):  # until the echo has arrived, unread
                if getattr(new, "pending_frames", 0) or (srv.received and not new.is_open):
                    break
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.02)
            await p.release(new)
            last = await p.acquire()
            _check(last is not new, "TRN-022", "a connection with an unread frame was handed out again")
            _check(not new.is_open, "TRN-022", "a connection with an unread frame was not closed")
            await last.send_frame(b"fresh")
            _check(await last.recv_frame() == b"fresh", "TRN-022", "the next user read a stale frame")
            await p.release(last)
        finally:
            await p.close()
            await srv.stop()

    _run(body(), "TRN-022", timeout)


def check_pool_close(
    maker: TransportMaker, *, pool: PoolMaker = _reference_pool, patience: float = 2.0, timeout: float = 20.0
) -> None:
    """TRN-024: closing a pool closes every connection it holds (idle and lent), wakes a waiting
    acquirer with TransportClosed, and is idempotent; acquiring afterwards raises TransportClosed."""

    async def body() -> None:
        address = maker.fresh_address()
        srv = _EchoServer(await maker.listen(address))
        p = pool(lambda: maker.connect(address), max_size=2, idle_timeout=60.0, max_lifetime=600.0)
        try:
            lent, idle = await p.acquire(), await p.acquire()
            await p.release(idle)
            again = await p.acquire()
            waiter = asyncio.ensure_future(p.acquire(timeout=30.0))
            await asyncio.sleep(0.02)
            _check(not waiter.done(), "TRN-024", "an acquire beyond max_size did not wait")
            await p.close()
            try:
                got = await asyncio.wait_for(waiter, patience)
            except TransportClosed:
                pass
            except TimeoutError:
                raise _fail(
                    "TRN-024", f"a waiting acquirer was not woken within {patience} s of close"
                ) from None
            except TransportError as e:
                raise _fail(
                    "TRN-024", f"a waiting acquirer got {type(e).__name__}, not TransportClosed"
                ) from e
            else:
                raise _fail("TRN-024", f"a waiting acquirer got a connection ({got}) from a closed pool")
            for conn in (lent, again):
                _check(not conn.is_open, "TRN-024", "closing the pool left a connection open")
            await p.close()
            try:
                extra = await p.acquire(timeout=patience)
            except TransportClosed:
                pass
            else:
                await extra.close()
                raise _fail("TRN-024", "acquire after close handed out a connection")
            await p.release(lent)  # given back after close: accepted quietly
        finally:
            await p.close()
            await srv.stop()

    _run(body(), "TRN-024", timeout)


RetryingFactory = Callable[[Callable[[], Awaitable[Transport]], Callable[[float], Awaitable[None]], int], Any]


def _reference_retrying(
    connect_fn: Callable[[], Awaitable[Transport]],
    sleep: Callable[[float], Awaitable[None]],
    max_retries: int,
) -> ReconnectingClient:
    return ReconnectingClient(
        connect_fn, Backoff(base=0.001, factor=2.0, max_delay=0.004, max_retries=max_retries), sleep=sleep
    )


def check_reconnect_gives_up(
    maker: TransportMaker,
    *,
    max_retries: int = 3,
    reconnector: RetryingFactory = _reference_retrying,
    timeout: float = 20.0,
) -> None:
    """TRN-031: with nobody listening, an operation fails after ``max_retries`` retries (one
    attempt plus ``max_retries``) with the last connection error (ConnectionRefused); the next
    operation starts a new schedule, and succeeds once a server is back.

    ``reconnector(connect, sleep, max_retries)`` builds the client under test (``request``,
    ``close``; it sleeps only through ``sleep``).
    """

    async def body() -> None:
        address = maker.fresh_address()
        attempts: list[int] = [0]
        sleeps: list[float] = []

        async def connect_fn() -> Transport:
            attempts[-1] += 1
            return await maker.connect(address)

        async def sleep(d: float) -> None:
            sleeps.append(d)
            await asyncio.sleep(d)

        client = reconnector(connect_fn, sleep, max_retries)
        srv: _EchoServer | None = None
        try:
            for op in range(2):
                attempts.append(0)
                sleeps.clear()
                try:
                    await client.request(b"nobody there", 5.0)
                except ConnectionRefused:
                    pass
                except TransportError as e:
                    raise _fail(
                        "TRN-031", f"gave up with {type(e).__name__}, not the connection error"
                    ) from e
                else:
                    raise _fail("TRN-031", "a request succeeded with nobody listening")
                _check(
                    attempts[-1] == max_retries + 1,
                    "TRN-031",
                    f"operation {op}: {attempts[-1]} attempts, not 1 + max_retries ({max_retries + 1})",
                )
                _check(
                    len(sleeps) == max_retries,
                    "TRN-031",
                    f"operation {op}: {len(sleeps)} waits, not max_retries = {max_retries} (a new schedule)",
                )
            srv = _EchoServer(await maker.listen(address))
            _check(
                await client.request(b"back", 5.0) == b"back", "TRN-031", "no answer once the server is back"
            )
        finally:
            await client.close()
            if srv is not None:
                await srv.stop()

    _run(body(), "TRN-031", timeout)


#: every in-process check, in a sensible order
IN_PROCESS_CHECKS: dict[str, Callable[..., None]] = {
    "handshake": check_handshake,
    "echo": check_echo,
    "ordering": check_ordering,
    "max_size": check_max_size,
    "oversize_refused": check_oversize_refused,
    "split_writes": check_split_writes,
    "peer_close": check_peer_close,
    "slow_reader": check_slow_reader,
    "many_clients": check_many_clients,
    "close": check_close,
    "no_leaks": check_no_leaks,
    "reconnection": check_reconnection,
    "no_duplicates": check_no_duplicates,
    "pool_reuse": check_pool_reuse,
    "addresses": check_addresses,
    "pool_expiry": check_pool_expiry,
    "pool_release": check_pool_release,
    "pool_close": check_pool_close,
    "reconnect_gives_up": check_reconnect_gives_up,
}

#: in-process checks of one transport only: run on the maker whose name is the key
TRANSPORT_SPECIFIC_CHECKS: dict[str, dict[str, Callable[..., None]]] = {
    "fifo": {"fifo_files": check_fifo_files},
}


def requirements_of(check: Callable[..., None]) -> tuple[str, ...]:
    """The requirement ids a check verifies: the ids its docstring begins with."""
    import re

    head = (check.__doc__ or "").split(":", 1)[0]
    return tuple(re.findall(r"\b(?:FRM|TRN)-\d{3}\b", head))


def run_all(maker: TransportMaker, *, skip: Iterable[str] = (), **overrides: dict[str, Any]) -> None:
    """Run every in-process check (``overrides``: keyword arguments per check name)."""
    for name, check in IN_PROCESS_CHECKS.items():
        if name not in skip:
            check(maker, **overrides.get(name, {}))


# ---------------------------------------------------------------- the raw wire, out of process


class RawWire:
    """A blocking client of the wire written from the spec alone, for endpoints in other processes.

    Opens ``unix:PATH``, ``fifo:DIR`` (the rendezvous of TRN-003) or ``stdio:COMMAND`` (a child).
    It does no handshake by itself: tests send whatever bytes they like.
    """

    def __init__(self, address: str, timeout: float = 10.0) -> None:
        self.address = address
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.buf = bytearray()
        self.eof = False
        scheme, _, target = address.partition(":")
        if scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(target)
            except OSError:
                sock.close()
                raise
            fd = sock.detach()
            self.rfd = self.wfd = fd
        elif scheme == "fifo":
            self.rfd, self.wfd = self._fifo(target)
        elif scheme == "stdio":
            self.proc = subprocess.Popen(shlex.split(target), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            assert self.proc.stdin is not None
            assert self.proc.stdout is not None
            self.rfd, self.wfd = self.proc.stdout.fileno(), self.proc.stdin.fileno()
        else:
            raise ValueError(f"RawWire opens unix:, fifo: and stdio: addresses, not {address!r}")
        os.set_blocking(self.rfd, True)
        os.set_blocking(self.wfd, True)

    def _fifo(self, directory: str) -> tuple[int, int]:
        ident = os.urandom(8).hex()
        c2s, s2c = (os.path.join(directory, f"{ident}.{d}") for d in ("c2s", "s2c"))
        os.mkfifo(c2s, 0o600)
        os.mkfifo(s2c, 0o600)
        try:
            rfd = os.open(s2c, os.O_RDONLY | os.O_NONBLOCK)
            cfd = os.open(os.path.join(directory, "connect"), os.O_WRONLY | os.O_NONBLOCK)
            os.write(cfd, ident.encode() + b"\n")
            os.close(cfd)
            deadline = time.monotonic() + self.timeout
            while True:
                try:
                    wfd = os.open(c2s, os.O_WRONLY | os.O_NONBLOCK)
                    return rfd, wfd
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.0005)
        finally:
            for p in (c2s, s2c):
                with contextlib.suppress(OSError):
                    os.unlink(p)

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.wfd, view) :]

    def _more(self) -> bool:
        import select

        if not select.select([self.rfd], [], [], self.timeout)[0]:
            raise TimeoutError(f"{self.address}: nothing received within {self.timeout} s")
        try:
            data = os.read(self.rfd, 1 << 20)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_exact(self, n: int) -> bytes | None:
        while len(self.buf) < n:
            if self.eof or not self._more():
                return None
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_frame(self) -> bytes | None:
        head = self.read_exact(4)
        if head is None:
            return None
        return self.read_exact(LEN.unpack(head)[0])

    def read_line(self) -> bytes | None:
        while b"\n" not in self.buf:
            if self.eof or not self._more():
                return None
        i = self.buf.index(b"\n")
        out = bytes(self.buf[:i])
        del self.buf[: i + 1]
        return out

    def at_eof(self) -> bool:
        """True when the peer closed with nothing more to read."""
        while not self.eof:
            if self._more():
                return False
        return not self.buf

    def handshake(self, codecs: Iterable[str] = ("json",), version: str = "1.0") -> dict[str, Any]:
        self.send(_hello(codecs, version))
        frame = self.read_frame()
        if frame is None:
            raise AssertionError(f"{self.address}: closed without answering the hello")
        obj: dict[str, Any] = json.loads(frame)
        return obj

    def close(self) -> None:
        for fd in {self.rfd, self.wfd}:
            with contextlib.suppress(OSError):
                os.close(fd)
        if self.proc is not None:
            if self.proc.stdin:
                with contextlib.suppress(OSError):
                    self.proc.stdin.close()
            if self.proc.stdout:
                with contextlib.suppress(OSError):
                    self.proc.stdout.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> RawWire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wire(address: str, reqs: str) -> RawWire:
    try:
        return RawWire(address)
    except OSError as e:
        raise _fail(reqs, f"cannot connect to {address}: {e}") from e


def check_endpoint_handshake(address: str) -> None:
    """FRM-010, FRM-011: the endpoint answers a hello with a welcome naming an offered codec and a
    version of major 1, and picks the client's first supported codec."""
    for offer in (["json"], ["msgpack", "json"], ["cbor", "json"]):
        with _wire(address, "FRM-010") as w:
            welcome = w.handshake(offer)
            _check(
                isinstance(welcome.get("symphony"), str), "FRM-011", f"welcome without a version: {welcome}"
            )
            _check(welcome["symphony"].split(".")[0] == "1", "FRM-011", f"welcome major: {welcome}")
            supported = [c for c in offer if c in ("json", "msgpack")]
            _check(welcome.get("codec") in supported, "FRM-011", f"offered {offer}, welcome {welcome}")
            if offer == ["cbor", "json"]:
                _check(welcome["codec"] == "json", "FRM-011", "an unknown codec was not skipped")


def check_endpoint_echo(address: str) -> None:
    """FRM-001, FRM-004, FRM-007: frames of several sizes come back intact; keep-alives are not
    answered."""
    rng = random.Random(7)
    with _wire(address, "FRM-001") as w:
        w.handshake()
        for size in (1, 100, 4096, 65536, 1 << 20):
            payload = rng.randbytes(size)
            w.send(LEN.pack(0) + _frame(payload) + LEN.pack(0))
            got = w.read_frame()
            _check(
                got == payload,
                "FRM-007",
                f"a {size}-byte frame came back as {None if got is None else len(got)}",
            )
        w.send(_frame(b"last"))
        _check(w.read_frame() == b"last", "FRM-004", "a keep-alive was answered or broke the stream")


def check_endpoint_pipelining(address: str, frames: int = 1000) -> None:
    """FRM-007: ``frames`` frames written back to back come back in order, once each."""
    with _wire(address, "FRM-007") as w:
        w.handshake()
        payloads = [b"%06d" % i * (1 + i % 5) for i in range(frames)]
        writer = threading.Thread(target=lambda: w.send(b"".join(_frame(p) for p in payloads)))
        writer.start()
        try:
            for i, p in enumerate(payloads):
                got = w.read_frame()
                _check(got == p, "FRM-007", f"frame {i}: got {got!r:.40}, sent {p!r:.40}")
        finally:
            writer.join()


def check_endpoint_split_writes(address: str) -> None:
    """FRM-005: a hello and a frame written one byte per write."""
    with _wire(address, "FRM-005") as w:
        for b in _hello() + _frame(b'{"split":true}'):
            w.send(bytes([b]))
        welcome = w.read_frame()
        _check(welcome is not None and b"codec" in welcome, "FRM-005", f"welcome {welcome!r}")
        _check(w.read_frame() == b'{"split":true}', "FRM-005", "the byte-by-byte frame did not come back")


def check_endpoint_max_size(address: str) -> None:
    """FRM-002, FRM-003: a 16 MiB frame comes back intact; a length of 16 MiB + 1 makes the
    endpoint close the connection without answering."""
    with _wire(address, "FRM-002") as w:
        w.handshake()
        big = bytes(range(256)) * (MAX_FRAME_SIZE // 256)
        writer = threading.Thread(target=lambda: w.send(_frame(big)))
        writer.start()
        try:
            _check(w.read_frame() == big, "FRM-002", "the 16 MiB frame did not come back intact")
        finally:
            writer.join()
    with _wire(address, "FRM-003") as w:
        w.handshake()
        w.send(LEN.pack(MAX_FRAME_SIZE + 1))
        _check(w.at_eof(), "FRM-003", "the endpoint did not close after an oversized length")


def check_endpoint_refusals(address: str) -> None:
    """FRM-012, FRM-013, FRM-014: garbage before the handshake and a hello of major 2 are answered
    with an error frame (SERIALIZATION, INVALID_PROTOCOL_VERSION) and the connection is closed."""
    cases = [
        (b"GET / HTTP/1.1\r\n\r\n", "SERIALIZATION", "FRM-013"),
        (LEN.pack(HELLO_MAX + 1), "SERIALIZATION", "FRM-013"),
        (_frame(b"not json"), "SERIALIZATION", "FRM-013"),
        (_hello(["cbor"]), "SERIALIZATION", "FRM-013"),
        (_hello(["json"], "2.0"), "INVALID_PROTOCOL_VERSION", "FRM-012"),
    ]
    for data, code, req in cases:
        with _wire(address, req) as w:
            w.send(data)
            frame = w.read_frame()
            _check(frame is not None, req, f"no error frame for {data[:20]!r}")
            assert frame is not None
            err = json.loads(frame).get("error", {})
            _check(err.get("code") == code, req, f"{data[:20]!r}: error frame {err}, expected {code}")
            _check(w.at_eof(), "FRM-014", f"{data[:20]!r}: the connection stayed open after the error frame")


def check_endpoint_mid_frame_close(address: str) -> None:
    """FRM-006: a client leaving inside a frame does not take the endpoint down: the next client is
    served."""
    with _wire(address, "FRM-006") as w:
        w.handshake()
        w.send(LEN.pack(1000) + b"partial")
    with _wire(address, "FRM-006") as w:
        w.handshake()
        w.send(_frame(b"next"))
        _check(w.read_frame() == b"next", "FRM-006", "the endpoint did not serve the next client")


def check_endpoint_ndjson(address: str) -> None:
    """FRM-020, FRM-021: an NDJSON hello (first byte '{') gets an NDJSON welcome with codec json,
    then lines are echoed; an empty line is a keep-alive."""
    with _wire(address, "FRM-020") as w:
        w.send(b'{"symphony":"1.0","codecs":["msgpack","json"]}\n')
        line = w.read_line()
        _check(line is not None, "FRM-020", "no NDJSON welcome")
        assert line is not None
        welcome = json.loads(line)
        _check(welcome.get("codec") == "json", "FRM-021", f"NDJSON welcome {welcome}")
        w.send(b'{"a":1}\n\n{"b":2}\n')
        _check(w.read_line() == b'{"a":1}', "FRM-021", "first line not echoed")
        _check(w.read_line() == b'{"b":2}', "FRM-021", "an empty line was not a keep-alive")


ENDPOINT_CHECKS: dict[str, Callable[[str], None]] = {
    "handshake": check_endpoint_handshake,
    "echo": check_endpoint_echo,
    "pipelining": check_endpoint_pipelining,
    "split_writes": check_endpoint_split_writes,
    "max_size": check_endpoint_max_size,
    "refusals": check_endpoint_refusals,
    "mid_frame_close": check_endpoint_mid_frame_close,
    "ndjson": check_endpoint_ndjson,
}


# ---------------------------------------------------------------- golden vectors


def _subset(want: Any, got: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(got, dict) and all(k in got and _subset(v, got[k]) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(got, list) and len(want) == len(got) and all(map(_subset, want, got))
    return bool(want == got)


def compare_framing_outcome(vector: dict[str, Any], outcome: dict[str, Any]) -> None:
    """Grade one ``frames`` or ``handshake`` vector (docs/vectors-format.md) against an outcome.

    ``outcome`` is what an implementation reports: ``frames`` (hex list), ``state``, and for
    ``handshake`` also ``codec``, ``mode`` and ``sent`` (the JSON objects it wrote), plus ``error``
    (a code) when it refused. Raises AssertionError naming the vector's requirements.
    """
    reqs = ", ".join(vector["requirements"])
    vid = vector["id"]
    if vector["result"] == "invalid":
        _check(
            outcome.get("error") == vector["error"], reqs, f"{vid}: expected {vector['error']}, got {outcome}"
        )
        if vector["operation"] == "handshake":
            sent = outcome.get("sent", [])
            if vector["input"]["role"] == "server":
                last = sent[-1] if sent else {}
                code = last.get("error", {}).get("code") if isinstance(last, dict) else None
                _check(code == vector["error"], reqs, f"{vid}: the server's error frame is {last}")
            else:
                _check(len(sent) == 1, reqs, f"{vid}: the client sent {sent} after refusing")
        return
    _check("error" not in outcome, reqs, f"{vid}: refused with {outcome.get('error')}")
    for key, want in vector["expected"].items():
        _check(
            _subset(want, outcome.get(key)), reqs, f"{vid}: {key} is {outcome.get(key)!r}, expected {want!r}"
        )


__all__ = [
    "ENDPOINT_CHECKS",
    "IN_PROCESS_CHECKS",
    "TRANSPORT_SPECIFIC_CHECKS",
    "NotApplicable",
    "AddressMaker",
    "RawPeer",
    "RawWire",
    "TransportMaker",
    "check_addresses",
    "check_close",
    "check_echo",
    "check_fifo_files",
    "check_endpoint_echo",
    "check_endpoint_handshake",
    "check_endpoint_max_size",
    "check_endpoint_mid_frame_close",
    "check_endpoint_ndjson",
    "check_endpoint_pipelining",
    "check_endpoint_refusals",
    "check_endpoint_split_writes",
    "check_handshake",
    "check_many_clients",
    "check_max_size",
    "check_no_duplicates",
    "check_no_leaks",
    "check_ordering",
    "check_oversize_refused",
    "check_peer_close",
    "check_pool_close",
    "check_pool_expiry",
    "check_pool_release",
    "check_pool_reuse",
    "check_reconnect_gives_up",
    "check_reconnection",
    "check_slow_reader",
    "check_split_writes",
    "child_processes",
    "compare_framing_outcome",
    "open_fds",
    "requirements_of",
    "run_all",
]
