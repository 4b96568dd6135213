"""What the implementation under test was asked and answered, so that a failure can show it.

The plugin hands every conformance test a :class:`RecordingImplementation`: a transparent proxy
around the implementation under test that keeps the last operations of the current test and,
for a property test, those of the current Hypothesis example. When a test fails, the operations
of the failing example (the last one Hypothesis ran: the shrunk counterexample) or the last ones
of the test are stored with the case (:attr:`~._results.CaseRecord.calls`) in a JSON form
(:func:`encode_call`). After the run they are replayed on the reference
(:func:`reference_answer`) to show the expected answer next to the actual one, and can be turned
into golden vectors (:mod:`._counterexamples`).

The encoded form of one call, by operation (``now_ns``: the clock set before it, if any)::

    {"op": "decode", "codec": "json", "data_text": "{...}"}          # or "data_hex" (bytes)
    {"op": "receive", "codec", "data_text" | "data_hex", "receiver_version": [1, 0], "now_ns"}
    {"op": "encode", "codec", "message"}
    {"op": "build", "fields", "now_ns"}
    {"op": "order", "messages"}
    {"op": "is_expired", "message", "now_ns"}
    {"op": "is_compatible", "a": [M, m], "b": [M, m]}
    {"op": "expects_response", "message_type"}

and the answer, in ``actual`` (and ``reference`` after a replay): ``{"result": ...}`` (a message,
``{"data_text" | "data_hex"}`` for encode, a list or a boolean), ``{"error": {"code", "message",
"details"}}`` or ``{"raised": "TypeError: ..."}`` (an exception that is no protocol error).
Values too large to show are cut (``"truncated": true``), and such a call is not replayed.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from hypothesis.strategies import SearchStrategy

from ._case import SuiteCase
from ._data import data_diff
from ._impl import Implementation, ImplError, ImplInfo, MessageData

#: Calls kept per test (the last ones) and per property example.
MAX_TEST_CALLS: Final = 12
MAX_EXAMPLE_CALLS: Final = 64
#: Values larger than this (as JSON text or bytes) are cut in the records.
MAX_VALUE_SIZE: Final = 64 * 1024
_PREVIEW: Final = 2000


@dataclass
class Call:
    """One operation on the implementation, as it happened (raw Python values)."""

    op: str
    args: tuple[Any, ...]
    now_ns: int | None
    outcome: str = "pending"  # "ok", "error", "raised"
    value: Any = None


class RecordingImplementation:
    """A transparent proxy around the implementation under test that records its operations.

    Only the operations of the :class:`~._impl.Implementation` interface are recorded; any other
    attribute (``last_exchange``, ``stderr_tail``, the transport operations, ...) is the wrapped
    object's own.
    """

    def __init__(self, inner: Implementation) -> None:
        self.inner = inner
        self._now_ns: int | None = None
        self._test_calls: deque[Call] = deque(maxlen=MAX_TEST_CALLS)
        self._example: list[Call] | None = None
        self._failing_example: list[Call] | None = None

    # -- what the plugin and the property runner call

    def begin_test(self) -> None:
        self._test_calls.clear()
        self._example = None
        self._failing_example = None

    def begin_example(self) -> None:
        self._example = []

    def example_failed(self) -> None:
        """The current example failed; Hypothesis runs the failing example it reports last."""
        self._failing_example = list(self._example or ())

    def end_example(self) -> None:
        self._example = None

    def failure_calls(self) -> tuple[list[Call], bool]:
        """The failing example's operations (then True), or else the test's last ones."""
        if self._failing_example is not None:
            return list(self._failing_example), True
        return list(self._test_calls), False

    # -- recording

    def _record(self, op: str, args: tuple[Any, ...], now_ns: int | None, run: Callable[[], Any]) -> Any:
        call = Call(op, args, now_ns)
        self._test_calls.append(call)
        if self._example is not None and len(self._example) < MAX_EXAMPLE_CALLS:
            self._example.append(call)
        try:
            value = run()
        except ImplError as e:
            call.outcome, call.value = "error", e
            raise
        except Exception as e:  # ImplBroken, ImplSkipped, or a bug of an in-process implementation
            call.outcome, call.value = "raised", e
            raise
        call.outcome, call.value = "ok", value
        return value

    # -- the Implementation interface

    @property
    def info(self) -> ImplInfo:
        return self.inner.info

    def set_clock(self, now_ns: int) -> None:
        self.inner.set_clock(now_ns)
        self._now_ns = now_ns

    def build(self, fields: Mapping[str, Any]) -> MessageData:
        return self._record("build", (fields,), self._now_ns, lambda: self.inner.build(fields))  # type: ignore[no-any-return]

    def encode(self, codec: str, message: MessageData) -> bytes:
        return self._record("encode", (codec, message), None, lambda: self.inner.encode(codec, message))  # type: ignore[no-any-return]

    def decode(self, codec: str, data: bytes) -> MessageData:
        return self._record("decode", (codec, data), None, lambda: self.inner.decode(codec, data))  # type: ignore[no-any-return]

    def receive(self, codec: str, data: bytes, receiver_version: tuple[int, int]) -> MessageData:
        return self._record(  # type: ignore[no-any-return]
            "receive",
            (codec, data, receiver_version),
            self._now_ns,
            lambda: self.inner.receive(codec, data, receiver_version),
        )

    def order(self, messages: Sequence[MessageData]) -> list[int]:
        return self._record("order", (messages,), None, lambda: self.inner.order(messages))  # type: ignore[no-any-return]

    def is_expired(self, message: MessageData, now_ns: int) -> bool:
        return self._record(  # type: ignore[no-any-return]
            "is_expired", (message, now_ns), None, lambda: self.inner.is_expired(message, now_ns)
        )

    def is_compatible(self, a: tuple[int, int], b: tuple[int, int]) -> bool:
        return self._record("is_compatible", (a, b), None, lambda: self.inner.is_compatible(a, b))  # type: ignore[no-any-return]

    def expects_response(self, message_type: str) -> bool:
        return self._record(  # type: ignore[no-any-return]
            "expects_response", (message_type,), None, lambda: self.inner.expects_response(message_type)
        )

    def close(self) -> None:
        """The wrapped implementation belongs to its fixture, which closes it."""

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"RecordingImplementation({self.inner!r})"


@dataclass
class RecordedSuiteCase(SuiteCase):
    """A :class:`~._case.SuiteCase` that tells its recorder where each property example begins
    and which one failed."""

    def check_property(self, check: Callable[[Any], None], strategy: SearchStrategy[Any]) -> None:
        recorder = self.impl if isinstance(self.impl, RecordingImplementation) else None
        if recorder is None:
            super().check_property(check, strategy)
            return

        def recorded(value: Any) -> None:
            recorder.begin_example()
            try:
                check(value)
            except BaseException:
                recorder.example_failed()
                raise
            finally:
                recorder.end_example()

        super().check_property(recorded, strategy)


# ---------------------------------------------------------------- the JSON form


def _plain(value: Any, depth: int = 0) -> Any:
    """JSON data: tuples become lists, non-finite floats and other objects their repr."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, bytes | bytearray):
        return {"data_hex": bytes(value).hex()}
    if depth < 200 and isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if depth < 200 and isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in value]
    return repr(value)[:_PREVIEW]


def _capped(value: Any) -> tuple[Any, bool]:
    """``value`` as JSON data, or a preview of it when it is too large (then True)."""
    plain = _plain(value)
    try:
        text = json.dumps(plain, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):  # pragma: no cover - _plain yields JSON data
        text = repr(plain)
    if len(text) <= MAX_VALUE_SIZE:
        return plain, False
    return {"truncated": True, "size": len(text), "preview": text[:_PREVIEW]}, True


def _bytes_form(data: bytes, codec: str | None) -> tuple[dict[str, Any], bool]:
    if len(data) > MAX_VALUE_SIZE:
        return {"data_hex": data[:_PREVIEW].hex(), "size": len(data), "truncated": True}, True
    if codec == "json":
        with contextlib.suppress(UnicodeDecodeError):
            return {"data_text": data.decode("utf-8")}, False
    return {"data_hex": data.hex()}, False


def bytes_of(form: Mapping[str, Any]) -> bytes:
    """The bytes of a ``{"data_text"}`` / ``{"data_hex"}`` form."""
    if "data_text" in form:
        return str(form["data_text"]).encode("utf-8")
    return bytes.fromhex(str(form["data_hex"]))


def _answer(call: Call) -> tuple[dict[str, Any], bool]:
    if call.outcome == "ok":
        if call.op == "encode" and isinstance(call.value, bytes | bytearray):
            form, cut = _bytes_form(bytes(call.value), call.args[0])
            return {"result": form}, cut
        value, cut = _capped(call.value)
        return {"result": value}, cut
    if call.outcome == "error":
        err: ImplError = call.value
        details, _ = _capped(err.details)
        return {"error": {"code": err.code, "message": err.message[:_PREVIEW], "details": details}}, False
    if call.outcome == "raised":
        return {"raised": f"{type(call.value).__name__}: {call.value}"[:_PREVIEW]}, False
    return {"raised": "no answer (the operation did not return)"}, False


def encode_call(call: Call) -> dict[str, Any]:
    """The JSON form of a recorded call (see the module's docstring)."""
    out: dict[str, Any] = {"op": call.op}
    cut = False
    a = call.args
    if call.op in ("decode", "receive"):
        out["codec"] = a[0]
        form, cut = _bytes_form(bytes(a[1]), a[0])
        out.update(form)
        if call.op == "receive":
            out["receiver_version"] = [int(a[2][0]), int(a[2][1])]
    elif call.op == "encode":
        out["codec"] = a[0]
        out["message"], cut = _capped(a[1])
    elif call.op == "build":
        out["fields"], cut = _capped(a[0])
    elif call.op == "order":
        out["messages"], cut = _capped(list(a[0]))
    elif call.op == "is_expired":
        out["message"], cut = _capped(a[0])
        out["now_ns"] = a[1]
    elif call.op == "is_compatible":
        out["a"], out["b"] = _plain(a[0]), _plain(a[1])
    elif call.op == "expects_response":
        out["message_type"] = _plain(a[0])
    if call.op in ("build", "receive"):
        out["now_ns"] = call.now_ns
    answer, answer_cut = _answer(call)
    out["actual"] = answer
    if cut or answer_cut:
        out["truncated"] = True
    return out


def encode_calls(calls: Sequence[Call], *, example: bool = False) -> list[dict[str, Any]]:
    """The JSON form of ``calls``; with ``example``, each is marked as one of the failing
    Hypothesis example's (``"example": true``)."""
    out = [encode_call(c) for c in calls]
    if example:
        for c in out:
            c["example"] = True
    return out


# ---------------------------------------------------------------- replay on the reference


def replayable(call: Mapping[str, Any]) -> bool:
    """Whether a recorded call can be asked of the reference again."""
    if call.get("truncated"):
        return False
    return not (call.get("op") in ("build", "receive") and call.get("now_ns") is None)


def _version(value: Any) -> tuple[int, int]:
    return (int(value[0]), int(value[1]))


def ask(impl: Implementation, call: Mapping[str, Any]) -> Any:
    """Perform a recorded call on ``impl`` (raises what it raises)."""
    op = call["op"]
    if call.get("now_ns") is not None and op in ("build", "receive"):
        impl.set_clock(int(call["now_ns"]))
    if op == "decode":
        return impl.decode(call["codec"], bytes_of(call))
    if op == "receive":
        return impl.receive(call["codec"], bytes_of(call), _version(call["receiver_version"]))
    if op == "encode":
        return impl.encode(call["codec"], call["message"])
    if op == "build":
        return impl.build(call["fields"])
    if op == "order":
        return impl.order(call["messages"])
    if op == "is_expired":
        return impl.is_expired(call["message"], int(call["now_ns"]))
    if op == "is_compatible":
        return impl.is_compatible(_version(call["a"]), _version(call["b"]))
    if op == "expects_response":
        return impl.expects_response(call["message_type"])
    raise ValueError(f"unknown operation {op!r}")


def reference_answer(
    call: Mapping[str, Any], reference: Implementation | None = None
) -> dict[str, Any] | None:
    """What the reference answers to a recorded call (the answer form of ``actual``), or None
    when the call cannot be replayed."""
    if not replayable(call):
        return None
    if reference is None:
        from ._adapters import ReferenceImplementation

        reference = ReferenceImplementation()
    probe = Call(str(call["op"]), (call.get("codec"),), None)
    try:
        probe.value = ask(reference, call)
        probe.outcome = "ok"
    except ImplError as e:
        probe.outcome, probe.value = "error", e
    except Exception as e:  # a recorded input the reference cannot even take (a harness bug)
        probe.outcome, probe.value = "raised", e
    answer, _ = _answer(probe)
    return answer


def _parsed_json(form: Mapping[str, Any]) -> Any:
    from .suite._support import parse_json_strict

    return parse_json_strict(bytes_of(form))


def agrees(call: Mapping[str, Any], reference: Mapping[str, Any] | None) -> bool | None:
    """Whether the implementation's answer (``call["actual"]``) is the reference's; None if unknown."""
    actual = call.get("actual") or {}
    if reference is None or call.get("truncated"):
        return None
    if "raised" in actual or "raised" in reference:
        return False
    if "error" in actual or "error" in reference:
        return (
            "error" in actual
            and "error" in reference
            and actual["error"]["code"] == reference["error"]["code"]
        )
    got, want = actual.get("result"), reference.get("result")
    op = call.get("op")
    if op in ("decode", "receive", "build"):
        if op == "build" and isinstance(got, dict) and isinstance(want, dict):
            got = {**got, "header": {k: v for k, v in (got.get("header") or {}).items() if k != "id"}}
            want = {**want, "header": {k: v for k, v in (want.get("header") or {}).items() if k != "id"}}
        return not data_diff(want, got)
    if op == "encode":
        if not isinstance(got, dict) or not isinstance(want, dict):
            return False
        if call.get("codec") == "json":
            try:
                return not data_diff(_parsed_json(want), _parsed_json(got))
            except (ValueError, UnicodeDecodeError):
                return False
        return bool(bytes_of(got) == bytes_of(want))
    return bool(type(got) is type(want) and got == want)


def with_reference_answers(calls: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The calls with ``reference`` (the reference's answer) and ``agrees`` added."""
    from ._adapters import ReferenceImplementation

    reference = ReferenceImplementation()
    out = []
    for call in calls:
        answer = reference_answer(call, reference)
        out.append({**call, "reference": answer, "agrees": agrees(call, answer)})
    return out
