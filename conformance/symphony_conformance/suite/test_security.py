"""The profile ``security`` (spec/security.md): who may connect, what bad input and load get.

* ``test_security_check[SCHEME-CHECK]``: each check of
  :data:`~symphony_conformance.security_checks.CHECKS` against echo endpoints the implementation
  starts with the configuration the check asks for (``listen(scheme, security=...)``: in process,
  or the driver's ``listen`` command), on ``unix:`` and ``fifo:``; with ``--transport``, against the
  plugged-in transport's listener served by the reference's echo; with ``--endpoint``, only the
  checks that need no configuration.
* ``test_decoder_robustness[CODEC]`` (ROB-004) and ``test_framing_robustness`` (ROB-005): random
  bytes and mutations of the golden vectors through the implementation's ``decode`` and
  ``frames``/``handshake``: a value or one of the spec's codes, never anything else.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest
from hypothesis import strategies as st

from .._case import SuiteCase
from .._impl import ImplError, ImplSkipped
from .._resources import fixtures_dir, spec_dir
from .._results import PROP_SKIP
from ..security_checks import (
    CHECKS,
    LISTENER_CHECKS,
    MakerTarget,
    NotObservable,
    SecurityConfig,
    Target,
    WireTarget,
    requirements_of,
)

SCHEMES = ("unix", "fifo")
#: the checks that need no configuration: the ones an ``--endpoint`` can run
DEFAULT_ONLY = ("oversize_length", "garbage", "killed_client", "load", "socket_mode")


def _skip_capability(case: SuiteCase, reason: str) -> NoReturn:
    case.user_properties.append((PROP_SKIP, "capability"))
    pytest.skip(reason)


def _param(value: Any, test_id: str, reqs: tuple[str, ...], deselect: str | None) -> Any:
    marks: list[Any] = [pytest.mark.requirement(*reqs)]
    if deselect:
        marks.append(pytest.mark.symphony_deselect(deselect))
    return pytest.param(value, id=test_id, marks=marks)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    config = metafunc.config
    endpoint = config.getoption("symphony_endpoint", None)
    plugged = config.getoption("symphony_transport", None)
    if "listener_check" in metafunc.fixturenames:
        fixed = "--endpoint: a running server cannot be started with other security settings"
        metafunc.parametrize(
            "listener_check",
            [
                _param(name, name, requirements_of(check), fixed if endpoint else None)
                for name, check in LISTENER_CHECKS.items()
            ],
        )
    if "security_check" not in metafunc.fixturenames:
        return
    params = []
    if plugged and not endpoint:
        for name, check in CHECKS.items():
            params.append(_param(("transport", name), f"transport-{name}", requirements_of(check), None))
    else:
        endpoint_scheme = str(endpoint).partition(":")[0] if endpoint else None
        for scheme in SCHEMES:
            for name, check in CHECKS.items():
                why = None
                if endpoint_scheme is not None and scheme != endpoint_scheme:
                    why = f"--endpoint is on {endpoint_scheme}:"
                elif endpoint and name not in DEFAULT_ONLY:
                    why = "--endpoint: a running server cannot be started with other security settings"
                params.append(_param((scheme, name), f"{scheme}-{name}", requirements_of(check), why))
    metafunc.parametrize("security_check", params)


class _Starters:
    """Endpoints per (implementation, scheme, configuration), started on first use."""

    def __init__(self) -> None:
        self._targets: dict[tuple[int, int, str, SecurityConfig], Target] = {}
        self._makers: list[MakerTarget] = []

    def starter(self, impl: Any, scheme: str, maker: Any) -> Callable[[SecurityConfig], Target]:
        def start(config: SecurityConfig) -> Target:
            key = (id(impl), getattr(impl, "restarts", 0), scheme, config)
            known = self._targets.get(key)
            if known is not None:
                return known
            target: Target
            if maker is not None:
                mt = MakerTarget(maker, config)
                self._makers.append(mt)
                target = mt
            else:
                listen = getattr(impl, "listen", None)
                if listen is None:
                    raise ImplSkipped("the implementation has no listen (TransportImplementation)")
                wire = config.to_wire()
                endpoint = listen(scheme, security=wire) if wire else listen(scheme)
                target = WireTarget(endpoint.address, endpoint.pid, config)
            self._targets[key] = target
            return target

        return start

    def close(self) -> None:
        for mt in self._makers:
            mt.close()
        self._makers.clear()
        self._targets.clear()


@pytest.fixture(scope="session")
def symphony_security_maker(pytestconfig: pytest.Config) -> Iterator[Any]:
    """The ``--transport`` maker of the security checks (None without one), closed at the end."""
    spec = pytestconfig.getoption("symphony_transport", None)
    if not spec:
        yield None
        return
    from .._adapters import ImplementationLoadError, load_transport_maker

    try:
        maker = load_transport_maker(spec)
    except ImplementationLoadError as e:
        raise pytest.UsageError(str(e)) from None
    try:
        yield maker
    finally:
        close = getattr(maker, "close", None)
        if callable(close):
            close()


@pytest.fixture(scope="session")
def symphony_security_targets() -> Iterator[_Starters]:
    starters = _Starters()
    try:
        yield starters
    finally:
        starters.close()


def test_security_check(
    symphony_case: SuiteCase,
    security_check: tuple[str, str],
    symphony_security_targets: _Starters,
    request: pytest.FixtureRequest,
) -> None:
    scheme, name = security_check
    maker = None
    if scheme == "transport":
        maker = request.getfixturevalue("symphony_security_maker")
    elif scheme not in symphony_case.capabilities.transports:
        _skip_capability(symphony_case, f"the implementation offers no endpoint on {scheme}:")
    start = symphony_security_targets.starter(symphony_case.impl, scheme, maker)
    try:
        CHECKS[name](start)
    except NotObservable as e:
        _skip_capability(symphony_case, str(e))


def test_listener_check(
    symphony_case: SuiteCase, listener_check: str, request: pytest.FixtureRequest
) -> None:
    """The checks of :data:`~symphony_conformance.security_checks.LISTENER_CHECKS` (SEC-002,
    SEC-006, SEC-008): they start listeners with a policy, in unsafe directories and on a transport
    without peer credentials, and read the listener's refusal counts, so they need the
    implementation's listener in this process (the reference's ``listen``/``connect``)."""
    if request.config.getoption("symphony_transport", None):
        _skip_capability(
            symphony_case,
            "--transport: these checks drive the implementation's own listener (unix:, fifo: and a "
            "transport without credentials) in process, not a plugged-in transport",
        )
    if getattr(symphony_case.impl, "transport_makers", None) is None:
        _skip_capability(
            symphony_case,
            "the implementation runs in another process: these checks need its listener in this "
            "process (a policy, unsafe directories, its refusal counts)",
        )
    import shutil
    import tempfile

    from symphony_ipc.transport import connect, listen

    directory = tempfile.mkdtemp(prefix="sy-s-", dir="/tmp")  # short: a socket path is <= 107 bytes
    try:
        LISTENER_CHECKS[listener_check](listen, connect, directory)
    except NotObservable as e:
        _skip_capability(symphony_case, str(e))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------- properties of the decoders


def _seeds(codec: str) -> list[bytes]:
    out: list[bytes] = []
    for path in sorted(fixtures_dir().glob("*.json")):
        for v in json.loads(path.read_text(encoding="utf-8"))["vectors"]:
            inp = v.get("input", {})
            if v.get("operation") in ("decode", "receive") and v.get("codec", "json") == codec:
                if "hex" in inp:
                    out.append(bytes.fromhex(inp["hex"]))
                elif "json" in inp:
                    out.append(str(inp["json"]).encode("utf-8", "surrogatepass"))
            if codec == "frames" and v.get("operation") in ("frames", "handshake"):
                out.append(bytes.fromhex(inp["hex"]))
    return out


@st.composite
def _mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        n = len(data)
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if op == "flip" and n:
            data[draw(st.integers(0, n - 1))] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            i = draw(st.integers(0, n))
            data[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and n:
            i = draw(st.integers(0, n - 1))
            del data[i : i + draw(st.integers(1, 4))]
        elif op == "truncate" and n:
            del data[draw(st.integers(0, n - 1)) :]
    return bytes(data)


def _codes() -> set[str]:
    schema = json.loads((spec_dir() / "message.schema.json").read_text(encoding="utf-8"))
    return set(schema["$defs"]["errorCode"]["enum"])


@pytest.mark.parametrize(
    "codec",
    [
        pytest.param(c, id=c, marks=[pytest.mark.requirement("ROB-004"), pytest.mark.symphony_codec(c)])
        for c in ("json", "msgpack")
    ],
)
def test_decoder_robustness(symphony_case: SuiteCase, codec: str) -> None:
    """ROB-004: whatever the bytes, decode gives a message or one of the spec's error codes."""
    impl = symphony_case.impl
    codes = _codes()
    seeds = _seeds(codec)

    def check(data: bytes) -> None:
        try:
            impl.decode(codec, data)
        except ImplError as e:
            assert e.code in codes, f"decode answered {e.code!r}, not a code of the spec"  # noqa: PT017

    symphony_case.check_property(check, st.one_of(st.binary(max_size=512), _mutated(seeds)))


@pytest.mark.requirement("ROB-005")
def test_framing_robustness(symphony_case: SuiteCase) -> None:
    """ROB-005: whatever the bytes, the frame decoder and a server's handshake give frames, a state,
    or a typed violation (MESSAGE_TOO_LARGE, SERIALIZATION, INVALID_PROTOCOL_VERSION)."""
    impl: Any = symphony_case.impl
    if getattr(impl, "frames", None) is None or getattr(impl, "handshake", None) is None:
        raise ImplSkipped("the implementation has no frames/handshake (TransportImplementation)")
    seeds = _seeds("frames")
    allowed = {"MESSAGE_TOO_LARGE", "SERIALIZATION", "INVALID_PROTOCOL_VERSION"}

    def check(case: tuple[bytes, bool]) -> None:
        data, eof = case
        try:
            out = impl.frames(data, eof=eof, mode="frames")
            assert out["state"] in ("open", "clean-eof", "broken"), out
            assert all(isinstance(f, bytes) and f for f in out["frames"])
        except ImplError as e:
            assert e.code == "MESSAGE_TOO_LARGE", f"frames answered {e.code}"  # noqa: PT017
        result = impl.handshake("server", {"codecs": ["json", "msgpack"]}, data, eof=eof)
        assert result.get("error") is None or result["error"] in allowed, result
        assert result["state"] in ("handshaking", "open", "clean-eof", "broken", "failed"), result

    symphony_case.check_property(
        check, st.tuples(st.one_of(st.binary(max_size=512), _mutated(seeds)), st.booleans())
    )
