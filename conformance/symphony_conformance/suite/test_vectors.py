"""One test per golden vector (fixtures/*.json; format: docs/vectors-format.md).

``valid``: the implementation must accept the input and yield ``expected``; ``invalid``: it must
reject it with ``error``; ``acceptable``: either, but an acceptance must yield ``expected`` (when
given) and a rejection must use ``error`` (when given). With flag ``encode-golden`` the
implementation's encoding of the expected message must reproduce the input (MessagePack: byte for
byte; JSON: as parsed data).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .._case import SuiteCase
from .._data import V4_UUID, data_diff, format_diff, timestamp_ns
from .._impl import ImplError, MessageData
from .._vectors import Vector, VectorError, load_vectors
from ._support import (
    expect_error,
    expect_ok,
    expect_same_message,
    fail,
    names_field,
    parse_json_strict,
    short,
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "vector" not in metafunc.fixturenames:
        return
    directory = metafunc.config.getoption("symphony_vectors", None)
    try:
        vectors = load_vectors(Path(directory) if directory else None)
    except VectorError as e:
        raise pytest.UsageError(f"cannot load the golden vectors: {e}") from None
    params = []
    for v in vectors:
        if not v.driven:
            continue  # transport operations: not driven through the Implementation interface yet
        marks: list[Any] = [pytest.mark.requirement(*v.requirements), pytest.mark.symphony_vector(v.id)]
        if v.codec is not None:
            marks.append(pytest.mark.symphony_codec(v.codec))
        params.append(pytest.param(v, id=v.id, marks=marks))
    metafunc.parametrize("vector", params)


def _ts(vector: Vector, value: Any) -> int:
    try:
        return timestamp_ns(value)
    except (TypeError, ValueError) as e:
        raise VectorError(f"{vector.id}: {value!r} is not a timestamp: {e}") from None


def _graded(
    vector: Vector, what: str, run: Callable[[], MessageData], check: Callable[[MessageData], None]
) -> None:
    """Apply the vector's result semantics to an operation that yields a message."""
    if vector.result == "valid":
        check(expect_ok(what, run))
    elif vector.result == "invalid":
        assert vector.error is not None
        err = expect_error(vector.error, what, run)
        if vector.error_field is not None and not names_field(err, vector.error_field):
            fail(
                f"{what}: {err.code} must name the member {vector.error_field!r} in its details.field, "
                f"got details {err.details!r}"
            )
    else:  # acceptable
        try:
            got = run()
        except ImplError as e:
            if vector.error is not None and e.code != vector.error:
                fail(f"{what}: rejecting is allowed only with {vector.error}, got {e.code} ({e.message})")
            return
        if vector.expected is not None:
            check(got)


def _check_encode_golden(case: SuiteCase, vector: Vector, message: MessageData, data: bytes) -> None:
    codec = vector.codec
    assert codec is not None
    encoded = expect_ok(f"encoding the expected message ({codec})", lambda: case.impl.encode(codec, message))
    if codec == "msgpack":
        if encoded != data:
            fail(
                "the MessagePack encoding differs from the golden bytes:\n"
                f"  expected {data.hex()}\n  got      {encoded.hex()}"
            )
        return
    try:
        got = parse_json_strict(encoded)
    except ValueError as e:
        fail(f"the JSON encoding is not canonical JSON text: {e}: {short(encoded)}")
    want = json.loads(data.decode("utf-8", "surrogatepass"))
    diffs = data_diff(want, got)  # exact: the golden input is canonical, timestamps included
    if diffs:
        fail(f"the JSON encoding differs from the golden input (as parsed data):{format_diff(diffs)}")


def test_vector(symphony_case: SuiteCase, vector: Vector) -> None:
    impl = symphony_case.impl
    op, inp = vector.operation, vector.input
    expected = vector.expected or {}
    if op in ("decode", "receive"):
        codec = vector.codec
        assert codec is not None
        data = vector.input_bytes()
        if op == "decode":
            what = f"decoding ({codec})"

            def run() -> MessageData:
                return impl.decode(codec, data)
        else:
            receiver = inp.get("receiver") or {}
            try:
                version = (int(receiver["version"]["major"]), int(receiver["version"]["minor"]))
                now = _ts(vector, receiver["now"])
            except (KeyError, TypeError) as e:
                raise VectorError(f"{vector.id}: input.receiver needs version and now ({e!r})") from None
            impl.set_clock(now)
            what = f"receiving ({codec}) at version {version[0]}.{version[1]}, now {receiver['now']}"

            def run() -> MessageData:
                return impl.receive(codec, data, version)

        def check(got: MessageData) -> None:
            expect_same_message(what, expected["message"], got)
            if "encode-golden" in vector.flags:
                _check_encode_golden(symphony_case, vector, expected["message"], data)

        _graded(vector, what, run, check)
    elif op == "build":
        fields = inp.get("fields", {})
        impl.set_clock(_ts(vector, inp["now"]))

        def check_build(got: MessageData) -> None:
            expect_same_message("building", expected["match"], got, subset=True)
            mid = got.get("header", {}).get("id") if isinstance(got, dict) else None
            if not isinstance(mid, str) or V4_UUID.fullmatch(mid) is None:
                fail(f"building: the id {mid!r} is not a canonical version-4 UUID")

        _graded(vector, f"building from {short(fields)}", lambda: impl.build(fields), check_build)
    elif op == "order":
        got_order = expect_ok("ordering", lambda: impl.order(inp["messages"]))
        if got_order != expected["order"]:
            fail(f"ordering: expected the processing order {expected['order']}, got {got_order}")
    elif op == "expiry":
        now = inp["now"]
        got_expired = expect_ok("is_expired", lambda: impl.is_expired(inp["message"], _ts(vector, now)))
        if got_expired is not expected["expired"]:
            ttl = inp["message"]["header"].get("ttl")
            ts = inp["message"]["header"].get("timestamp")
            fail(
                f"is_expired(timestamp {ts}, ttl {ttl}, now {now}): "
                f"expected {expected['expired']}, got {got_expired}"
            )
    elif op == "compatible":
        a = (inp["a"]["major"], inp["a"]["minor"])
        b = (inp["b"]["major"], inp["b"]["minor"])
        got_compat = expect_ok("is_compatible", lambda: impl.is_compatible(a, b))
        if got_compat is not expected["compatible"]:
            fail(f"is_compatible({a}, {b}): expected {expected['compatible']}, got {got_compat}")
    elif op == "expects_response":
        name = inp["message_type"]
        if vector.result == "invalid":
            assert vector.error is not None
            expect_error(vector.error, f"expects_response({name!r})", lambda: impl.expects_response(name))
            return
        got_er = expect_ok("expects_response", lambda: impl.expects_response(name))
        if got_er is not expected["expects_response"]:
            fail(f"expects_response({name!r}): expected {expected['expects_response']}, got {got_er}")
    else:  # pragma: no cover - load_vectors rejects unknown operations
        raise VectorError(f"{vector.id}: unknown operation {op!r}")
