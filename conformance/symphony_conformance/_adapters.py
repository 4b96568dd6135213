"""Implementations the harness can drive: the bundled reference, and ``--impl`` specs.

``--impl`` forms (see :func:`load_implementation`):

* ``reference`` (the default): the bundled reference, in-process;
* ``python:package.module:factory``: ``factory()`` (no arguments) returns an :class:`Implementation`;
* ``exec:COMMAND ARGS...``: an out-of-process implementation speaking the driver protocol
  (``spec/driver/``), e.g. ``exec:node examples/node/driver.mjs``.

``--transport python:package.module:factory`` (or ``python:path/to/file.py:factory``) names a
transport *maker* for the in-process transport checks (:func:`load_transport_maker`), and
``--endpoint ADDRESS`` a running server checked on the wire alone (:class:`EndpointImplementation`).
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import symphony_ipc as ref
from symphony_ipc._codec import message_from_data, message_to_data
from symphony_ipc._model import check_message_type

from . import _spec
from ._impl import (
    PROFILES,
    TRANSPORTS,
    Capabilities,
    Endpoint,
    Implementation,
    ImplError,
    ImplInfo,
    ImplSkipped,
    MessageData,
)

if TYPE_CHECKING:
    from symphony_ipc._driver import EchoEndpoints

    from .bus_testing import BusUnderTest
    from .transport_checks import TransportMaker

DEFAULT_IMPL = "reference"


class ImplementationLoadError(Exception):
    """An ``--impl`` spec that is malformed, or names something that cannot be loaded or started."""


def driven_profiles() -> list[str]:
    """The spec's profiles the suite can drive through the :class:`Implementation` interface."""
    return [p for p in _spec.profiles() if p in PROFILES]


#: The reference's transports the in-process checks run on (``pipe`` is stdio's data path, two
#: anonymous pipes, in process; the stdio child itself is checked through its endpoint).
IN_PROCESS_TRANSPORTS: tuple[str, ...] = ("unix", "fifo", "pipe", "memory")


def _raise_impl_error(e: ref.ProtocolError) -> NoReturn:
    details = {k: v for k, v in e.details.items() if isinstance(v, str | int | float | bool) or v is None}
    raise ImplError(
        e.code.value, e.message, details, category=e.category, recoverable=e.recoverable
    ) from None


def _check_codec(codec: str) -> ref.Codec:
    if codec == "json":
        return "json"
    if codec == "msgpack":
        return "msgpack"
    raise ImplSkipped(f"codec {codec!r} is not implemented")


class ReferenceImplementation:
    """The reference (``symphony_ipc``) in-process, behind the :class:`Implementation` interface.

    Protocol errors (:class:`symphony_ipc.ProtocolError`) become :class:`ImplError` with the
    spec's code; the clock is a manual one, set by :meth:`set_clock`.
    """

    def __init__(self) -> None:
        self._clock = ref.ManualClock(time.time_ns())
        self._info: ImplInfo | None = None
        self._endpoints: EchoEndpoints | None = None

    @property
    def info(self) -> ImplInfo:
        if self._info is None:
            self._info = ImplInfo(
                name="symphony-ipc reference",
                version=ref.__version__,
                language="python",
                spec_version=ref.SPEC_VERSION,
                capabilities=Capabilities(
                    frozenset(driven_profiles()), frozenset(ref.CODECS), frozenset(TRANSPORTS)
                ),
            )
        return self._info

    # -- helpers subclasses (mutants) reuse

    def _message(self, data: Mapping[str, Any]) -> ref.Message:
        try:
            return message_from_data(copy.deepcopy(dict(data)))
        except ref.ProtocolError as e:
            _raise_impl_error(e)

    def _call(self, fn: Callable[[], ref.Message]) -> MessageData:
        try:
            return copy.deepcopy(message_to_data(fn()))
        except ref.ProtocolError as e:
            _raise_impl_error(e)

    # -- the Implementation interface

    def set_clock(self, now_ns: int) -> None:
        self._clock.set(now_ns)

    def build(self, fields: Mapping[str, Any]) -> MessageData:
        def run() -> ref.Message:
            return ref.build_from_fields(copy.deepcopy(dict(fields)), self._clock)

        return self._call(run)

    def encode(self, codec: str, message: MessageData) -> bytes:
        c = _check_codec(codec)
        msg = self._message(message)
        try:
            return ref.encode(msg, c)
        except ref.ProtocolError as e:
            _raise_impl_error(e)

    def decode(self, codec: str, data: bytes) -> MessageData:
        c = _check_codec(codec)
        return self._call(lambda: ref.decode(data, c))

    def receive(self, codec: str, data: bytes, receiver_version: tuple[int, int]) -> MessageData:
        c = _check_codec(codec)
        version = ref.ProtocolVersion(*receiver_version)
        return self._call(lambda: ref.receive(data, c, now_ns=self._clock.now_ns(), version=version))

    def order(self, messages: Sequence[MessageData]) -> list[int]:
        msgs = [self._message(m) for m in messages]
        index = {id(m): i for i, m in enumerate(msgs)}
        return [index[id(m)] for m in ref.order(msgs)]

    def is_expired(self, message: MessageData, now_ns: int) -> bool:
        return self._message(message).is_expired(now_ns)

    def is_compatible(self, a: tuple[int, int], b: tuple[int, int]) -> bool:
        return ref.ProtocolVersion(*a).is_compatible(ref.ProtocolVersion(*b))

    def expects_response(self, message_type: str) -> bool:
        try:
            return check_message_type(message_type).expects_response
        except ref.ProtocolError as e:
            _raise_impl_error(e)

    # -- the profile transport (_impl.TransportImplementation)

    def frames(self, data: bytes, *, eof: bool, mode: str) -> dict[str, Any]:
        from symphony_ipc.transport.sansio import run_frames_vector

        out = run_frames_vector({"hex": bytes(data).hex(), "eof": eof, "mode": mode})
        if "error" in out:
            raise ImplError(out["error"], "the frame decoder refused the stream")
        return {"frames": [bytes.fromhex(h) for h in out["frames"]], "state": out["state"]}

    def handshake(self, role: str, config: Mapping[str, Any], data: bytes, *, eof: bool) -> dict[str, Any]:
        from symphony_ipc.transport.sansio import run_handshake_vector

        out = run_handshake_vector({"role": role, role: dict(config), "hex": bytes(data).hex(), "eof": eof})
        out["frames"] = [bytes.fromhex(h) for h in out["frames"]]
        return out

    def listen(
        self, scheme: str, security: Mapping[str, Any] | None = None, *, role: str = "echo"
    ) -> Endpoint:
        """An echo endpoint in this process (a background thread's event loop); stdio: a child.
        ``security``: the limits of spec/security.md it enforces (profile ``security``); ``role``
        ``bus-node``: a bus node (``symphony_ipc.bus.BusNode``, profile ``bus-node``) instead."""
        import os

        from symphony_ipc._driver import ROLES, EchoEndpoints

        if scheme not in TRANSPORTS:
            raise ImplSkipped(f"no echo endpoint on {scheme!r}")
        if role not in ROLES:
            raise ImplSkipped(f"no listen role {role!r}")
        if security and scheme == "stdio":
            raise ImplSkipped("a stdio endpoint serves the one parent that spawned it: no security settings")
        if self._endpoints is None:
            self._endpoints = EchoEndpoints()
        address = self._endpoints.listen(scheme, security=security, role=role)
        return Endpoint(address, None if scheme == "stdio" else os.getpid())

    def transport_makers(self, directory: str) -> dict[str, TransportMaker]:
        """Makers of the in-process transport checks, one per built-in transport (addresses in
        ``directory``, which must be short: a Unix socket path is at most 107 bytes)."""
        from .transport_checks import AddressMaker

        return {name: AddressMaker(name, directory) for name in IN_PROCESS_TRANSPORTS}

    # -- the profile bus (_impl.BusImplementation)

    def new_bus(self) -> BusUnderTest:
        """A fresh reference bus (``BusCore`` on a manual clock, :class:`~.bus_testing.ReferenceBus`)."""
        from .bus_testing import ReferenceBus

        return ReferenceBus()

    def close(self) -> None:
        endpoints, self._endpoints = self._endpoints, None
        if endpoints is not None:
            endpoints.close()


class EndpointImplementation:
    """``--endpoint ADDRESS``: a running server under test through its address alone.

    It declares the profiles ``transport`` and ``bus-node`` on the address's scheme and nothing
    else: the suite runs the raw wire checks of the selected profile (``--profile bus-node``: the
    server is a bus node) against the address; every other operation is declined.
    """

    def __init__(self, address: str) -> None:
        scheme = address.partition(":")[0]
        if scheme not in TRANSPORTS or address == scheme or not address.partition(":")[2]:
            raise ImplementationLoadError(
                f"--endpoint {address!r}: expected unix:PATH, fifo:DIR or 'stdio:COMMAND ARGS...'"
            )
        self.address = address
        self.scheme = scheme
        self._info = ImplInfo(
            name=f"endpoint {address}",
            version="",
            language="unknown",
            spec_version="",
            capabilities=Capabilities(frozenset({"transport", "bus-node"}), frozenset(), frozenset({scheme})),
        )

    @property
    def info(self) -> ImplInfo:
        return self._info

    def listen(
        self, scheme: str, security: Mapping[str, Any] | None = None, *, role: str = "echo"
    ) -> Endpoint:
        """The address under test whatever the ``role``: ``--profile`` says what the server is."""
        if scheme != self.scheme:
            raise ImplSkipped(f"the endpoint under test is on {self.scheme}:")
        if security:
            raise ImplSkipped("--endpoint: a running server cannot be started with other security settings")
        return Endpoint(self.address)

    def _declined(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise ImplSkipped("--endpoint: only the raw wire checks run against a running server")

    set_clock = build = encode = decode = receive = order = _declined
    is_expired = is_compatible = expects_response = frames = handshake = _declined

    def close(self) -> None:
        pass


def _load_python(target: str, spec: str) -> Implementation:
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ImplementationLoadError(
            f"--impl {spec!r}: expected python:package.module:factory (e.g. python:mypkg.conformance:make)"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # any import-time failure is the user's module, reported as such
        raise ImplementationLoadError(f"--impl {spec!r}: cannot import {module_name!r}: {e!r}") from e
    factory = module
    for part in attr.split("."):
        try:
            factory = getattr(factory, part)
        except AttributeError:
            raise ImplementationLoadError(
                f"--impl {spec!r}: {module_name!r} has no attribute {attr!r}"
            ) from None
    if not callable(factory):
        raise ImplementationLoadError(f"--impl {spec!r}: {module_name}:{attr} is not callable")
    try:
        impl = factory()
    except Exception as e:
        raise ImplementationLoadError(f"--impl {spec!r}: {module_name}:{attr}() raised {e!r}") from e
    if not isinstance(impl, Implementation):
        missing = [
            name
            for name in (
                "info",
                "set_clock",
                "build",
                "encode",
                "decode",
                "receive",
                "order",
                "is_expired",
                "is_compatible",
                "expects_response",
                "close",
            )
            if not hasattr(impl, name)
        ]
        raise ImplementationLoadError(
            f"--impl {spec!r}: {module_name}:{attr}() returned {type(impl).__name__}, which is not a "
            f"symphony_conformance.Implementation (missing: {', '.join(missing)})"
        )
    return impl


def _import_target(target: str, spec: str, option: str, example: str) -> Callable[[], Any]:
    """The factory ``module:attr`` (or ``path/to/file.py:attr``) of a ``python:`` spec."""
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise ImplementationLoadError(
            f"{option} {spec!r}: expected python:package.module:factory (e.g. {example})"
        )
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).resolve()
            mod_spec = importlib.util.spec_from_file_location(path.stem, path)
            if mod_spec is None or mod_spec.loader is None or not path.is_file():
                raise FileNotFoundError(f"no such file: {module_name}")
            module = sys.modules.get(path.stem)
            if module is None or getattr(module, "__file__", None) != str(path):
                module = importlib.util.module_from_spec(mod_spec)
                sys.modules[path.stem] = module
                mod_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except Exception as e:  # any import-time failure is the user's module, reported as such
        raise ImplementationLoadError(f"{option} {spec!r}: cannot import {module_name!r}: {e!r}") from e
    factory: Any = module
    for part in attr.split("."):
        try:
            factory = getattr(factory, part)
        except AttributeError:
            raise ImplementationLoadError(
                f"{option} {spec!r}: {module_name!r} has no attribute {attr!r}"
            ) from None
    if not callable(factory):
        raise ImplementationLoadError(f"{option} {spec!r}: {module_name}:{attr} is not callable")
    return factory  # type: ignore[no-any-return]


_MAKER_MEMBERS = ("name", "fresh_address", "listen", "connect", "open_raw")


def load_transport_maker(spec: str) -> TransportMaker:
    """The transport maker a ``--transport python:module:factory`` spec names: ``factory()`` returns
    an object with ``name``, ``fresh_address()``, ``async listen(address)``, ``async
    connect(address, **options)`` and ``async open_raw(address)``
    (:class:`~symphony_conformance.transport_checks.TransportMaker`), and optionally
    ``reconnector(connect, sleep)`` and ``pool(connect, max_size)`` for its own reconnecting client
    and pool. :class:`ImplementationLoadError` when it cannot be loaded.
    """
    kind, sep, rest = spec.strip().partition(":")
    if kind != "python" or not sep:
        raise ImplementationLoadError(
            f"--transport {spec!r}: expected python:package.module:factory or python:path/to/file.py:factory"
        )
    factory = _import_target(rest.strip(), spec, "--transport", "python:examples/tcp_transport.py:make")
    try:
        maker = factory()
    except Exception as e:
        raise ImplementationLoadError(f"--transport {spec!r}: the factory raised {e!r}") from e
    missing = [m for m in _MAKER_MEMBERS if not hasattr(maker, m)]
    if missing:
        raise ImplementationLoadError(
            f"--transport {spec!r}: the factory returned {type(maker).__name__}, which is not a transport "
            f"maker (missing: {', '.join(missing)}; see symphony_conformance.transport_checks.TransportMaker)"
        )
    if not isinstance(maker.name, str) or not maker.name:
        raise ImplementationLoadError(f"--transport {spec!r}: the maker's name must be a non-empty string")
    return maker  # type: ignore[no-any-return]


def _load_exec(command: str, spec: str, timeout: float) -> Implementation:
    try:
        argv = shlex.split(command)
    except ValueError as e:
        raise ImplementationLoadError(f"--impl {spec!r}: cannot split the command: {e}") from None
    if not argv:
        raise ImplementationLoadError(f"--impl {spec!r}: expected exec:COMMAND ARGS...")
    try:
        from ._driver_client import ExecImplementation
    except ImportError as e:  # pragma: no cover - the driver client ships with the package
        raise ImplementationLoadError(f"--impl {spec!r}: the driver client is unavailable: {e}") from e
    try:
        impl: Implementation = ExecImplementation(argv, timeout=timeout)
    except Exception as e:
        raise ImplementationLoadError(f"--impl {spec!r}: cannot start {argv[0]!r}: {e}") from e
    return impl


def load_implementation(spec: str = DEFAULT_IMPL, *, timeout: float = 10.0) -> Implementation:
    """The implementation an ``--impl`` spec names; :class:`ImplementationLoadError` when it cannot.

    ``timeout`` is the per-operation limit for ``exec:`` implementations.
    """
    spec = spec.strip()
    if spec in ("", DEFAULT_IMPL):
        return ReferenceImplementation()
    kind, sep, rest = spec.partition(":")
    if sep and kind == "python":
        return _load_python(rest.strip(), spec)
    if sep and kind == "exec":
        return _load_exec(rest, spec, timeout)
    raise ImplementationLoadError(
        f"--impl {spec!r}: unknown form; expected 'reference', 'python:package.module:factory' "
        "or 'exec:COMMAND ARGS...'"
    )
