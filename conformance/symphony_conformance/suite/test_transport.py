"""The profile ``transport`` (spec/transport.md): framing vectors, in-process transport checks and
wire checks of running echo endpoints.

* ``test_framing_vector[ID]``: each ``frames`` / ``handshake`` vector of ``fixtures/framing.json``,
  run through the implementation's ``frames`` / ``handshake``
  (:class:`~symphony_conformance._impl.TransportImplementation`; the driver commands of the same
  names) and graded by :func:`~symphony_conformance.transport_checks.compare_framing_outcome`.
* ``test_transport_check[TRANSPORT-CHECK]``: each check of
  :data:`~symphony_conformance.transport_checks.IN_PROCESS_CHECKS` on a transport *maker*: the one
  ``--transport`` names, else the implementation's own (``transport_makers``: the reference's
  ``unix``, ``fifo``, ``pipe`` and ``memory``). An implementation in another process has none.
* ``test_endpoint_check[SCHEME-CHECK]``: the raw wire checks (the harness is a client written from
  the spec, :class:`~symphony_conformance.transport_checks.RawWire`) against the implementation's
  echo endpoint on each scheme it offers (``listen``), or the server ``--endpoint`` names. The
  checks of :data:`~symphony_conformance.transport_checks.ENDPOINT_CHECKS` plus those of this
  module: back-pressure, many clients, a silent client, descriptors after 1,000 connections, a
  stdio child's exit.

With ``--endpoint`` only the wire checks of that endpoint run; with ``--transport`` the wire checks
do not run (they would check the implementation, not the plugged-in transport).
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import socket
import stat
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from .._adapters import IN_PROCESS_TRANSPORTS, ImplementationLoadError, load_transport_maker
from .._case import SuiteCase
from .._impl import TRANSPORTS, Endpoint, ImplError, ImplSkipped
from .._results import PROP_SKIP
from .._vectors import Vector, VectorError, load_vectors
from .._wirecheck import LEN
from .._wirecheck import check as _check
from .._wirecheck import fail as _fail
from .._wirecheck import frame as _frame
from ..transport_checks import (
    ENDPOINT_CHECKS,
    IN_PROCESS_CHECKS,
    TRANSPORT_SPECIFIC_CHECKS,
    NotApplicable,
    RawWire,
    TransportMaker,
    compare_framing_outcome,
    requirements_of,
)
from ._support import EndpointCache

# ---------------------------------------------------------------- wire checks of this module


class NotObservable(Exception):
    """A wire check cannot see what it needs (e.g. the server's descriptors): not the server's fault."""


def _connect(address: str, reqs: str, timeout: float = 10.0) -> RawWire:
    try:
        return RawWire(address, timeout)
    except OSError as e:
        raise _fail(reqs, f"cannot connect to {address}: {e}") from e


def _echoes(w: RawWire, payload: bytes, reqs: str) -> None:
    w.send(_frame(payload))
    got = w.read_frame()
    _check(got == payload, reqs, f"{payload[:40]!r} came back as {None if got is None else got[:40]!r}")


def _shut_write(w: RawWire) -> None:
    """End the client's direction of the stream, keeping the other open (a half close)."""
    scheme = w.address.partition(":")[0]
    if scheme == "unix":
        with socket.socket(fileno=os.dup(w.wfd)) as s:
            s.shutdown(socket.SHUT_WR)
        return
    if w.proc is not None and w.proc.stdin is not None:
        w.proc.stdin.close()  # its descriptor is w.wfd
    else:
        os.close(w.wfd)
    w.wfd = w.rfd  # RawWire.close closes {rfd, wfd}: the write end is gone already


def check_wire_slow_reader(
    endpoint: Endpoint, *, frame_size: int = 64 << 10, bound: int = 32 << 20, stall: float = 0.5
) -> None:
    """TRN-013: a client that writes without reading is made to wait: the endpoint stops reading
    once its echo backs up instead of buffering without bound (at most ``bound`` bytes accepted),
    and once the client reads, every frame comes back in order."""
    with _connect(endpoint.address, "TRN-013") as w:
        w.handshake()
        os.set_blocking(w.wfd, False)
        written, started, pending = 0, 0, b""
        last = time.monotonic()
        try:
            while True:
                if not pending:
                    pending = _frame(started.to_bytes(4, "big") * (frame_size // 4))
                    started += 1
                try:
                    n = os.write(w.wfd, pending)
                except BlockingIOError:
                    n = 0
                now = time.monotonic()
                if n:
                    pending, written, last = pending[n:], written + n, now
                    _check(
                        written <= bound,
                        "TRN-013",
                        f"the endpoint took {written} bytes from a client that reads nothing: "
                        "it does not stop reading when its output backs up",
                    )
                elif now - last > stall:
                    break
                else:
                    time.sleep(0.005)
        finally:
            os.set_blocking(w.wfd, True)
        rest = threading.Thread(target=w.send, args=(pending,))  # the frame cut by the stall
        rest.start()
        try:
            for i in range(started):
                got = w.read_frame()
                _check(
                    got == i.to_bytes(4, "big") * (frame_size // 4),
                    "TRN-013",
                    f"frame {i} of {started} did not come back intact after the stall",
                )
        finally:
            rest.join()


def check_wire_many_clients(endpoint: Endpoint, *, clients: int = 32, frames: int = 20) -> None:
    """TRN-015: many clients connected at once, their frames interleaved: each gets back exactly its
    own frames, in order."""
    wires: list[RawWire] = []
    try:
        for _ in range(clients):
            w = _connect(endpoint.address, "TRN-015")
            wires.append(w)
            w.handshake()
        for i in range(frames):
            for k, w in enumerate(wires):
                w.send(_frame(b"client %d frame %d" % (k, i)))
        for k, w in enumerate(wires):
            for i in range(frames):
                got = w.read_frame()
                _check(got == b"client %d frame %d" % (k, i), "TRN-015", f"client {k} got {got!r}")
    finally:
        for w in wires:
            w.close()


def check_wire_silent_client(endpoint: Endpoint, *, patience: float = 4.0) -> None:
    """TRN-010: a client that connects and says nothing (or half a hello) delays no other: another
    client's handshake and echo complete meanwhile, each answer within ``patience`` seconds (under
    the 5 s a server gives a silent client, FRM-017: one serving handshakes one at a time fails)."""
    with _connect(endpoint.address, "TRN-010"), _connect(endpoint.address, "TRN-010") as half:
        half.send(LEN.pack(30) + b'{"symph')
        try:
            with _connect(endpoint.address, "TRN-010", timeout=patience) as other:
                welcome = other.handshake()
                _check("codec" in welcome, "TRN-010", f"welcome {welcome}")
                _echoes(other, b"not delayed", "TRN-010")
        except TimeoutError as e:
            raise _fail("TRN-010", f"a client waited behind a silent one: {e}") from None


def _fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError as e:
        raise NotObservable(f"cannot list the descriptors of process {pid}: {e.strerror}") from None


def _server_pid(endpoint: Endpoint) -> int:
    if endpoint.pid is not None:
        return endpoint.pid
    if endpoint.address.startswith("unix:"):  # the peer's credentials name the serving process
        with contextlib.closing(RawWire(endpoint.address)) as w, socket.socket(fileno=os.dup(w.rfd)) as s:
            pid: int = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
            if pid > 0:
                return pid
    raise NotObservable(f"the process serving {endpoint.address} is unknown (the driver gave no pid)")


def check_wire_no_leaks(endpoint: Endpoint, *, cycles: int = 1000, settle: float = 5.0) -> None:
    """TRN-016: after ``cycles`` connect, handshake, echo and close cycles the serving process has
    no more open file descriptors than before (counted in /proc, given its pid)."""
    pid = _server_pid(endpoint)
    for i in range(3):  # warm up what is created lazily (buffers, the loop's self-pipe)
        with _connect(endpoint.address, "TRN-016") as w:
            w.handshake()
            _echoes(w, b"warm-up %d" % i, "TRN-016")
    time.sleep(0.05)
    before = _fd_count(pid)
    for i in range(cycles):
        with _connect(endpoint.address, "TRN-016") as w:
            w.handshake()
            _echoes(w, b"cycle %d" % i, "TRN-016")
    deadline = time.monotonic() + settle  # the server closes its side when it sees our end
    after = _fd_count(pid)
    while after > before and time.monotonic() < deadline:
        time.sleep(0.02)
        after = _fd_count(pid)
    _check(
        after <= before,
        "TRN-016",
        f"process {pid} holds {after - before} more file descriptors after {cycles} connections",
    )


def _mode(path: str, reqs: str) -> os.stat_result:
    try:
        return os.lstat(path)
    except OSError as e:
        raise _fail(reqs, f"{path}: {e.strerror}") from None


def check_wire_socket_file(endpoint: Endpoint) -> None:
    """TRN-002: the server's socket file is a socket of mode 0600 (only its user may connect)."""
    st = _mode(endpoint.address.partition(":")[2], "TRN-002")
    _check(stat.S_ISSOCK(st.st_mode), "TRN-002", f"{endpoint.address} is not a socket")
    _check(stat.S_IMODE(st.st_mode) == 0o600, "TRN-002", f"socket mode {stat.S_IMODE(st.st_mode):o}, not 600")


def check_wire_fifo_files(endpoint: Endpoint) -> None:
    """TRN-003: the FIFO server's directory has mode 0700 and its rendezvous ``DIR/connect`` is a
    FIFO of mode 0600."""
    directory = endpoint.address.partition(":")[2]
    st = _mode(directory, "TRN-003")
    _check(stat.S_ISDIR(st.st_mode), "TRN-003", f"{directory} is not a directory")
    _check(
        stat.S_IMODE(st.st_mode) == 0o700, "TRN-003", f"directory mode {stat.S_IMODE(st.st_mode):o}, not 700"
    )
    st = _mode(os.path.join(directory, "connect"), "TRN-003")
    _check(stat.S_ISFIFO(st.st_mode), "TRN-003", f"{directory}/connect is not a FIFO")
    _check(
        stat.S_IMODE(st.st_mode) == 0o600, "TRN-003", f"rendezvous mode {stat.S_IMODE(st.st_mode):o}, not 600"
    )


def check_wire_child_exit(endpoint: Endpoint, *, cycles: int = 2, grace: float = 10.0) -> None:
    """TRN-005: a child serving on stdio writes nothing but frames on stdout and exits by itself
    when its stdin reaches end of stream."""
    for i in range(cycles):
        w = _connect(endpoint.address, "TRN-005")
        try:
            w.handshake()
            _echoes(w, b"child %d" % i, "TRN-005")
            _shut_write(w)
            _check(w.at_eof(), "TRN-005", "the child wrote more than frames on its stdout")
            assert w.proc is not None
            try:
                w.proc.wait(grace)
            except Exception:
                raise _fail(
                    "TRN-005", f"the child did not exit within {grace} s of its stdin ending"
                ) from None
        finally:
            w.close()


def _on_address(check: Callable[[str], None]) -> Callable[[Endpoint], None]:
    def run(endpoint: Endpoint) -> None:
        check(endpoint.address)

    run.__doc__ = check.__doc__
    return run


def check_wire_few_clients(endpoint: Endpoint) -> None:
    """TRN-015: as :func:`check_wire_many_clients` with 3 clients (on stdio each is a new child)."""
    check_wire_many_clients(endpoint, clients=3)


_COMMON: dict[str, Callable[[Endpoint], None]] = {
    **{name: _on_address(c) for name, c in ENDPOINT_CHECKS.items() if name != "ndjson"},
    "slow_reader": check_wire_slow_reader,
    "many_clients": check_wire_many_clients,
}
#: The wire checks per scheme. NDJSON is a MUST on stdio only (FRM-020, FRM-023); a server on its
#: own stdio serves one connection, so "a silent client delays no other" and the descriptor count
#: are for the listening schemes, the child's exit for stdio.
WIRE_CHECKS: dict[str, dict[str, Callable[[Endpoint], None]]] = {
    "unix": {
        **_COMMON,
        "silent_client": check_wire_silent_client,
        "no_leaks": check_wire_no_leaks,
        "files": check_wire_socket_file,
    },
    "fifo": {
        **_COMMON,
        "silent_client": check_wire_silent_client,
        "no_leaks": check_wire_no_leaks,
        "files": check_wire_fifo_files,
    },
    "stdio": {
        **_COMMON,
        "many_clients": check_wire_few_clients,
        "ndjson": _on_address(ENDPOINT_CHECKS["ndjson"]),
        "child_exit": check_wire_child_exit,
    },
}


# ---------------------------------------------------------------- collection

_MAKERS: dict[str, TransportMaker] = {}


def _plugged_maker(spec: str) -> TransportMaker:
    """The ``--transport`` maker, loaded once per process (at collection: its name is in test ids)."""
    if spec not in _MAKERS:
        try:
            _MAKERS[spec] = load_transport_maker(spec)
        except ImplementationLoadError as e:
            raise pytest.UsageError(str(e)) from None
    return _MAKERS[spec]


def _param(value: Any, test_id: str, reqs: tuple[str, ...], deselect: str | None, *more: Any) -> Any:
    marks: list[Any] = [pytest.mark.requirement(*reqs), *more]
    if deselect:
        marks.append(pytest.mark.symphony_deselect(deselect))
    return pytest.param(value, id=test_id, marks=marks)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    config = metafunc.config
    endpoint = config.getoption("symphony_endpoint", None)
    plugged = config.getoption("symphony_transport", None)
    out_of_process = str(config.getoption("symphony_impl", "reference")).strip().startswith("exec:")
    if "framing_vector" in metafunc.fixturenames:
        directory = config.getoption("symphony_vectors", None)
        try:
            vectors = load_vectors(Path(directory) if directory else None)
        except VectorError as e:
            raise pytest.UsageError(f"cannot load the golden vectors: {e}") from None
        why = "--endpoint: the wire checks alone" if endpoint else None
        metafunc.parametrize(
            "framing_vector",
            [
                _param(v, v.id, v.requirements, why, pytest.mark.symphony_vector(v.id))
                for v in vectors
                if v.transport
            ],
        )
    if "transport_check" in metafunc.fixturenames:
        if endpoint:
            names, why = list(IN_PROCESS_TRANSPORTS), "--endpoint: the wire checks alone"
        elif plugged:
            names, why = [_plugged_maker(plugged).name], None
        else:
            names = list(IN_PROCESS_TRANSPORTS)
            why = (
                "in-process checks need a transport in this process (--transport)" if out_of_process else None
            )
        metafunc.parametrize(
            "transport_check",
            [
                _param((t, name), f"{t}-{name}", requirements_of(check), why)
                for t in names
                for name, check in {**IN_PROCESS_CHECKS, **TRANSPORT_SPECIFIC_CHECKS.get(t, {})}.items()
            ],
        )
    if "endpoint_check" in metafunc.fixturenames:
        endpoint_scheme = str(endpoint).partition(":")[0] if endpoint else None
        params = []
        for scheme in TRANSPORTS:
            why = None
            if plugged and not endpoint:
                why = "--transport: the in-process checks of the plugged-in transport"
            elif endpoint_scheme is not None and scheme != endpoint_scheme:
                why = f"--endpoint is on {endpoint_scheme}:"
            for name, check in WIRE_CHECKS[scheme].items():
                params.append(_param((scheme, name), f"{scheme}-{name}", requirements_of(check), why))
        metafunc.parametrize("endpoint_check", params)


# ---------------------------------------------------------------- fixtures


def _skip_capability(case: SuiteCase, reason: str) -> NoReturn:
    case.user_properties.append((PROP_SKIP, "capability"))
    pytest.skip(reason)


@pytest.fixture(scope="session")
def symphony_plugged_transport(pytestconfig: pytest.Config) -> Iterator[TransportMaker | None]:
    """The ``--transport`` maker (None without one), closed at the end when it has ``close()``."""
    spec = pytestconfig.getoption("symphony_transport", None)
    if not spec:
        yield None
        return
    maker = _plugged_maker(spec)
    try:
        yield maker
    finally:
        close = getattr(maker, "close", None)
        if callable(close):
            close()


@pytest.fixture(scope="session")
def symphony_endpoints() -> EndpointCache:
    """The implementation's echo endpoints, one per scheme."""
    return EndpointCache()


@pytest.fixture
def short_tmp_dir() -> Iterator[str]:
    """A fresh directory with a short path (a Unix socket path is at most 107 bytes)."""
    directory = tempfile.mkdtemp(prefix="sy-", dir="/tmp")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------- the tests


def test_framing_vector(symphony_case: SuiteCase, framing_vector: Vector) -> None:
    vector = framing_vector
    impl: Any = symphony_case.impl
    run = getattr(impl, vector.operation, None)
    if run is None:
        raise ImplSkipped(
            f"the implementation has no {vector.operation} "
            "(see symphony_conformance._impl.TransportImplementation)"
        )
    inp = vector.input
    try:
        data = bytes.fromhex(inp["hex"])
    except ValueError as e:
        raise VectorError(f"{vector.id}: input.hex: {e}") from None
    eof = bool(inp.get("eof", True))
    outcome: dict[str, Any]
    try:
        if vector.operation == "frames":
            got = impl.frames(data, eof=eof, mode=inp.get("mode", "frames"))
            outcome = {"frames": [bytes(f).hex() for f in got["frames"]], "state": got["state"]}
        else:
            role = inp["role"]
            got = impl.handshake(role, inp.get(role, {}), data, eof=eof)
            outcome = {k: v for k, v in got.items() if k != "frames"}
            outcome["frames"] = [bytes(f).hex() for f in got["frames"]]
    except ImplError as e:
        outcome = {"error": e.code}
    compare_framing_outcome(vector.raw, outcome)


def test_transport_check(
    symphony_case: SuiteCase,
    transport_check: tuple[str, str],
    symphony_plugged_transport: TransportMaker | None,
    short_tmp_dir: str,
) -> None:
    transport, name = transport_check
    maker = symphony_plugged_transport
    if maker is None:
        makers = getattr(symphony_case.impl, "transport_makers", None)
        if makers is None:
            _skip_capability(symphony_case, "the implementation offers no in-process transport (--transport)")
        maker = makers(short_tmp_dir).get(transport)
        if maker is None:
            _skip_capability(symphony_case, f"the implementation offers no in-process {transport} transport")
    options: dict[str, Any] = {}
    # A transport with its own reconnecting client or pool hands them over; else the reference's
    # run on top of its connections.
    for check_name, hook, option in (
        ("reconnection", "reconnector", "reconnector"),
        ("pool_reuse", "pool", "pool"),
    ):
        factory = getattr(maker, hook, None)
        if name == check_name and callable(factory):
            options[option] = factory
    check = IN_PROCESS_CHECKS.get(name) or TRANSPORT_SPECIFIC_CHECKS[transport][name]
    try:
        check(maker, **options)
    except NotApplicable as e:
        _skip_capability(symphony_case, str(e))
    finally:
        # Finalize what a failed check left behind (its event loop is closed) now: a finalizer
        # that runs later, inside pytest's traceback rendering (ast.parse), can crash the run.
        gc.collect()


def test_endpoint_check(
    symphony_case: SuiteCase, endpoint_check: tuple[str, str], symphony_endpoints: EndpointCache
) -> None:
    scheme, name = endpoint_check
    if scheme not in symphony_case.capabilities.transports:
        _skip_capability(symphony_case, f"the implementation offers no endpoint on {scheme}:")
    endpoint = symphony_endpoints.get(symphony_case.impl, scheme)
    try:
        WIRE_CHECKS[scheme][name](endpoint)
    except NotObservable as e:
        _skip_capability(symphony_case, str(e))
