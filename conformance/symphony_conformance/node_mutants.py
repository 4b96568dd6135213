"""Seeded bus-node faults: a man in the middle in front of the reference's bus node.

Each mutant is an implementation (``--impl``) registered in :data:`CATALOGUE` with the requirement
ids it breaks. Its ``listen(scheme, role="bus-node")`` starts the reference's node
(``symphony_ipc.bus.BusNode``, what ``symphony-ipc serve`` runs) and, in front of it, a proxy on a
Unix socket that forwards the frames of every connection both ways and breaks one thing: it strips
``bus.reply``, drops a refusal, lets a ping's answer overtake, widens the window, swaps two copies,
keeps a closed client's connection to the node open... The proxy reads frames in JSON (it offers
the node only the JSON codec), so the faults are on the wire, where a node in any language could
have them. A conformance run of the profile ``bus-node`` against a mutant must exit 1 and name
them::

    symphony-conformance run --profile bus-node \\
        --impl python:symphony_conformance.node_mutants:no_reply_flag

tests/harness/test_node_profile.py runs them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import struct
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar, TypeVar

from ._adapters import ReferenceImplementation
from ._catalogue import ImplMutant
from ._impl import Capabilities, Endpoint, Implementation, ImplInfo, ImplSkipped

__all__ = ["CATALOGUE", "NodeMutant"]

LEN = struct.Struct(">I")
SYSTEM = "bus:system"
ACK = "bus:ack"
REPLY = "bus.reply"


class NodeMutant(ImplMutant):
    """One seeded bus-node fault: what it breaks (on the profile ``bus-node``) and how to load it."""

    profile: ClassVar[str] = "bus-node"


CATALOGUE: dict[str, NodeMutant] = {}
"""Every registered bus-node mutant, by name."""

F = TypeVar("F", bound=Callable[[], Any])


# ---------------------------------------------------------------- the proxy


Msg = dict[str, Any]


def _frame(payload: bytes) -> bytes:
    return LEN.pack(len(payload)) + payload


def _encode(m: Msg) -> bytes:
    return _frame(json.dumps(m, ensure_ascii=False).encode())


def _parse(payload: bytes) -> Msg | None:
    try:
        obj = json.loads(payload)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) and isinstance(obj.get("header"), dict) else None


def _h(m: Msg) -> dict[str, Any]:
    h: dict[str, Any] = m["header"]
    return h


def _is_reply(m: Msg) -> bool:
    meta = m.get("metadata")
    return isinstance(meta, dict) and meta.get(REPLY) is True


class Link:
    """One client connection through the proxy: what the client sent, and a way to write to it
    later (a fault that holds frames back)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: asyncio.StreamWriter) -> None:
        self.loop = loop
        self.client = client
        self.controls: dict[str, Msg] = {}
        """Control requests the client sent, by id."""
        self.submissions: set[str] = set()
        self.acks: set[str] = set()
        self.requests: set[str] = set()
        """Ids of the Requests the client submitted (their answers are deliveries too)."""
        self.held: list[bytes] = []
        self.timer: asyncio.TimerHandle | None = None
        self.state: dict[str, Any] = {}
        self.codec = "json"
        """The codec the node chose (the welcome's)."""

    def write_down(self, frames: Sequence[bytes]) -> None:
        if frames and not self.client.is_closing():
            self.client.write(b"".join(frames))

    def hold(self, frame: bytes, delay: float) -> None:
        """Hold ``frame``; held frames go out after ``delay`` s unless released before."""
        self.held.append(frame)
        if self.timer is None:
            self.timer = self.loop.call_later(delay, self.release)

    def release(self) -> list[bytes]:
        out, self.held = self.held, []
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.write_down(out)
        return []

    def is_answer(self, m: Msg) -> bool:
        """A copy answering one of the client's Requests (not a reply of the node)."""
        return not _is_reply(m) and _h(m).get("correlation_id") in self.requests


class Fault:
    """A proxy that forwards everything; subclasses break one thing. ``up`` sees each frame from
    the client, ``down`` each frame from the node; each returns the frames to forward now."""

    def up(self, link: Link, raw: bytes, m: Msg | None) -> list[bytes] | None:
        """``None``: close the connection."""
        return [raw]

    def down(self, link: Link, raw: bytes, m: Msg | None) -> list[bytes]:
        return [raw]

    def client_gone(self) -> bool:
        """Whether the proxy ends the node's side when the client's ends."""
        return True

    serial: bool = False
    """Serve one client connection at a time."""
    json_only: bool = True
    """Offer the node only the JSON codec (the proxy reads the frames); False: the client's offer."""


def _control_op(m: Msg | None) -> dict[str, Any] | None:
    """The payload of ``m`` when it is a control request (to bus:system, an object), else None."""
    if m is None or _h(m).get("target") != SYSTEM:
        return None
    p = m.get("payload")
    return p if isinstance(p, dict) else None


def _note(link: Link, m: Msg | None) -> None:
    if m is None:
        return
    h = _h(m)
    mid = str(h.get("id"))
    if h.get("target") == SYSTEM:
        link.controls[mid] = m
    elif h.get("target") == ACK:
        link.acks.add(mid)
    else:
        link.submissions.add(mid)
        if h.get("message_type") == "Request":
            link.requests.add(mid)


class Proxy:
    """A Unix-socket man in the middle in front of the node at ``upstream`` (``unix:PATH``),
    served by an event loop in a daemon thread."""

    def __init__(self, upstream: str, path: str, fault: Fault) -> None:
        self.upstream = upstream.partition(":")[2]
        self.path = path
        self.fault = fault
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="node-mutant-proxy", daemon=True)
        self.thread.start()
        self._server: asyncio.AbstractServer | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._lock: asyncio.Lock | None = None
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> None:
        self._lock = asyncio.Lock()
        self._server = await asyncio.start_unix_server(self._serve, path=self.path)
        os.chmod(self.path, 0o600)

    async def _serve(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        self._writers.append(cw)
        assert self._lock is not None
        try:
            if self.fault.serial:
                async with self._lock:
                    await self._pipe(cr, cw)
            else:
                await self._pipe(cr, cw)
        except (OSError, asyncio.IncompleteReadError, ValueError, asyncio.CancelledError):
            pass  # the client or the node went away, or the proxy is closing
        finally:
            cw.close()

    async def _pipe(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        nr, nw = await asyncio.open_unix_connection(self.upstream)
        self._writers.append(nw)
        link = Link(asyncio.get_running_loop(), cw)
        hello = await cr.readexactly(LEN.unpack(await cr.readexactly(4))[0])
        if self.fault.json_only:  # offer the node JSON alone, so that the proxy reads every frame
            with contextlib.suppress(ValueError, TypeError):
                obj = json.loads(hello)
                obj["codecs"] = ["json"]
                hello = json.dumps(obj).encode()
        nw.write(_frame(hello))
        welcome = await nr.readexactly(LEN.unpack(await nr.readexactly(4))[0])
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            link.codec = str(json.loads(welcome).get("codec") or "json")
        cw.write(_frame(welcome))
        down = asyncio.ensure_future(self._down(nr, link))
        try:
            while True:
                payload = await cr.readexactly(LEN.unpack(await cr.readexactly(4))[0])
                m = _parse(payload)
                _note(link, m)
                out = self.fault.up(link, _frame(payload), m)
                if out is None:
                    break
                nw.write(b"".join(out))
        except (asyncio.IncompleteReadError, OSError):
            pass
        finally:
            if self.fault.client_gone():
                nw.close()
                down.cancel()
            else:
                await down  # the node's side stays open until the proxy closes

    async def _down(self, nr: asyncio.StreamReader, link: Link) -> None:
        try:
            while True:
                payload = await nr.readexactly(LEN.unpack(await nr.readexactly(4))[0])
                link.write_down(self.fault.down(link, _frame(payload), _parse(payload)))
        except (asyncio.IncompleteReadError, OSError):
            pass
        finally:
            link.release()
            link.client.close()

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in self._writers:
            w.close()
        for t in asyncio.all_tasks():
            if t is not asyncio.current_task():
                t.cancel()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


class _Mutant(ReferenceImplementation):
    """The reference whose bus nodes sit behind a proxy with one fault (``unix:`` only)."""

    def __init__(self, name: str, fault: Fault) -> None:
        super().__init__()
        self._name = name
        self._fault = fault
        self._proxies: list[Proxy] = []
        self._dir: str | None = None

    @property
    def info(self) -> ImplInfo:
        base = super().info
        caps = Capabilities(base.capabilities.profiles, base.capabilities.codecs, frozenset({"unix"}))
        return replace(base, name=f"mutant {self._name} (of the reference)", capabilities=caps)

    def listen(
        self, scheme: str, security: Mapping[str, Any] | None = None, *, role: str = "echo"
    ) -> Endpoint:
        if role != "bus-node":
            return super().listen(scheme, security, role=role)
        if scheme != "unix":
            raise ImplSkipped("the node mutants proxy unix: nodes only")
        node = super().listen("unix", security, role=role)
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="sy-nm-", dir="/tmp")
        path = os.path.join(self._dir, f"p{len(self._proxies)}.sock")
        self._proxies.append(Proxy(node.address, path, self._fault))
        return Endpoint(f"unix:{path}", os.getpid())

    def close(self) -> None:
        for p in self._proxies:
            p.close()
        self._proxies.clear()
        super().close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _mutant(
    breaks: Sequence[str], checks: Sequence[str], description: str
) -> Callable[[type[Fault]], type[Fault]]:
    """Register a fault class under its snake-case name as a mutant factory."""

    def register(cls: type[Fault]) -> type[Fault]:
        name = "".join(f"_{c.lower()}" if c.isupper() else c for c in cls.__name__).lstrip("_")
        if name in CATALOGUE:
            raise ValueError(f"node mutant {name!r} is registered twice")

        def factory() -> Implementation:
            return _Mutant(name, cls())

        factory.__name__ = factory.__qualname__ = name
        factory.__doc__ = description
        globals()[name] = factory
        __all__.append(name)
        CATALOGUE[name] = NodeMutant(name, tuple(breaks), tuple(checks), description, factory)
        return cls

    return register


# ---------------------------------------------------------------- the faults


@_mutant(["NODE-001"], ["connections"], "serves one connection at a time (the next waits for the hello)")
class SerialConnections(Fault):
    serial = True


@_mutant(["NODE-001"], ["codecs"], "on a MessagePack connection the node's answers are written in JSON")
class JsonAnswersOnMsgpack(Fault):
    json_only = False

    def down(self, link: Link, raw: bytes, m: Msg | None) -> list[bytes]:
        if link.codec != "msgpack":
            return [raw]
        from .node_checks import from_msgpack

        try:
            data = from_msgpack(raw[4:])
        except ValueError:
            return [raw]
        return [_encode(data)] if _is_reply(data) else [raw]


@_mutant(["NODE-002"], ["control_ops"], "a control request the node refuses is answered as a success")
class ControlErrorsAsResponses(Fault):
    def down(self, link: Link, raw: bytes, m: Msg | None) -> list[bytes]:
        if (
            m is not None
            and _is_reply(m)
            and _h(m).get("message_type") == "Error"
            and _h(m).get("correlation_id") in link.controls
        ):
            _h(m)["message_type"] = "Response"
            m["payload"] = {}
            return [_encode(m)]
        return [raw]


@_mutant(["NODE-003"], ["answer_form"], "the node's answers lose the metadata bus.reply")
class NoReplyFlag(Fault):
    def down(self, link: Link, raw: bytes, m: Msg | None) -> list[bytes]:
        if m is not None and _is_reply(m):
            del m["metadata"][REPLY]
            return [_encode(m)]
        return [raw]


@_mutant(["NODE-003"], ["answer_form"], "a submission carrying bus.reply is accepted (the key is dropped)")
class ReplyFlagLetThrough(Fault):
    def up(self, link: Link, raw: bytes, m: Msg | None) -> list[bytes] | None:
        meta = m.get("metadata") if m is not None else None
        if (
            m is not None
            and isinstance(meta, dict)
            and REPLY in meta
            and _h(m).get("target") not in (SYSTEM, ACK)
        ):
            del meta[REPLY]
            return [_encode(m)]
        return [raw]


@_mutant(
    ["NODE-003"], ["answer_form"], "the node's answers have priority 0, not the priority of what they answer"
)
class ReplyPriorityZero(Fault):
    def down(self, link: Link, raw: bytes, m: Msg | None) -> list[bytes]:
        if m is not None and _is_reply(m) and _h(m).get("priority"):
            _h(m)["priority"] = 0
            return [_encode(m)]
        return [raw]


@_mutant(["NODE-004"], ["submissions"], "a refused submission gets no answer")
class SwallowsRefusals(Fault):
    def down(self, link: Link, raw: bytes, m: Msg | None) -> list[bytes]:
        if m is not None and _is_reply(m) and _h(m).get("correlation_id") in link.submissions:
            return []
        return [raw]


@_mutant(["NODE-004"], ["submissions"], "an undecodable frame closes the connection")
class ClosesOnGarbage(Fault):
    def up(self, link: Link, raw: bytes, m: Msg | None) -> list[bytes] | None:
        return None if m is None else [raw]


@_mutant(["NODE-005"], ["order"], "the answer to a ping overtakes the answer before it")
class PingOvertakes(Fault):
    def down(self, link: Link, raw: bytes, m: Msg | None) -> list[bytes]:
        if m is None or not _is_reply(m):
            return [*link.release(), raw]
        ctl = link.controls.get(str(_h(m).get("correlation_id")))
        is_ping = (
            ctl is not None and isinstance(ctl.get("payload"), dict) and ctl["payload"].get("op") == "ping"
        )
        if is_ping and link.held:
            held, link.held = link.held, []
            if link.timer is not None:
                link.timer.cancel()
                link.timer = None
            return [raw, *held]
        link.release()
        link.hold(raw, 0.05)
        return []


@_mutant(["NODE-006"], ["window"], "every window is one wider than registered (window 0 lets a copy out)")
class WindowPlusOne(Fault):
    def up(self, link: Link, raw: bytes, m: Msg | None) -> list[bytes] | None:
        p = _control_op(m)
        if (
            m is not None
            and p is not None
            and p.get("op") in ("register", "window")
            and type(p.get("window")) is int
        ):
            p["window"] += 1
            return [_encode(m)]
        return [raw]

    def down(self, link: Link, raw: bytes, m: Msg | None) -> list[bytes]:
        p = m.get("payload") if m is not None else None
        if m is not None and _is_reply(m) and isinstance(p, dict) and type(p.get("window")) is int:
            p["window"] -= 1  # the client sees the window it asked for
            return [_encode(m)]
        return [raw]


@_mutant(["NODE-006"], ["window"], "the first two copies of every burst go out swapped")
class SwapsCopies(Fault):
    def down(self, link: Link, raw: bytes, m: Msg | None) -> list[bytes]:
        if m is None or _is_reply(m) or link.is_answer(m):
            return [raw]
        if link.held:
            held, link.held = link.held, []
            if link.timer is not None:
                link.timer.cancel()
                link.timer = None
            return [raw, *held]
        link.hold(raw, 0.1)
        return []


@_mutant(["NODE-004", "NODE-006"], ["submissions", "window"], "a refused acknowledgement gets no answer")
class SwallowsAckRefusals(Fault):
    def down(self, link: Link, raw: bytes, m: Msg | None) -> list[bytes]:
        if m is not None and _is_reply(m) and _h(m).get("correlation_id") in link.acks:
            return []
        return [raw]


@_mutant(
    ["NODE-007"], ["answers"], "an answer waits while the requester's connection has copies unacknowledged"
)
class AnswersWaitForWindow(Fault):
    def up(self, link: Link, raw: bytes, m: Msg | None) -> list[bytes] | None:
        if m is not None and _h(m).get("target") == ACK:
            flying = link.state["flying"] = max(0, link.state.get("flying", 0) - 1)
            if flying == 0:
                link.release()
        return [raw]

    def down(self, link: Link, raw: bytes, m: Msg | None) -> list[bytes]:
        if m is None or _is_reply(m):
            return [raw]
        if link.is_answer(m):
            if link.state.get("flying", 0):
                link.held.append(raw)  # until the acknowledgements catch up (no timer)
                return []
            return [raw]
        link.state["flying"] = link.state.get("flying", 0) + 1
        return [raw]


@_mutant(["NODE-008"], ["connection_end"], "a client's end does not end its connection to the node")
class KeepsClosedEndpoints(Fault):
    def client_gone(self) -> bool:
        return False


@_mutant(
    ["NODE-010"], ["answer_acks"], "answer_acks is echoed but not registered: answers acknowledge nothing"
)
class AnswerAcksIgnored(Fault):
    def up(self, link: Link, raw: bytes, m: Msg | None) -> list[bytes] | None:
        p = _control_op(m)
        if m is not None and p is not None and p.get("op") == "register" and p.get("answer_acks") is True:
            del p["answer_acks"]
            link.state.setdefault("asked", set()).add(str(_h(m).get("id")))
            return [_encode(m)]
        return [raw]

    def down(self, link: Link, raw: bytes, m: Msg | None) -> list[bytes]:
        p = m.get("payload") if m is not None else None
        if (
            m is not None
            and isinstance(p, dict)
            and _h(m).get("correlation_id") in link.state.get("asked", ())
        ):
            p["answer_acks"] = True
            return [_encode(m)]
        return [raw]


def catalogue() -> dict[str, NodeMutant]:
    """:data:`CATALOGUE` (for callers that load catalogues by function)."""
    return dict(CATALOGUE)
