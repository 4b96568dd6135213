"""Helpers of the conformance tests: expected errors, parameters carrying requirement ids,
strict JSON parsing and the message schema."""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections.abc import Callable
from functools import cache
from typing import Any, Final, NoReturn

import pytest

from .. import _spec
from .._data import format_diff, message_diff
from .._impl import Endpoint, ImplError, ImplSkipped

CURRENT_VERSION: Final = {"major": 1, "minor": 0}
UUID_A: Final = "0191c3a2-6a4f-4c3e-9a6b-1f2e3d4c5b6a"
UUID_B: Final = "7d444840-9dc0-11d1-b245-5ffdce74fad2"
TIMESTAMP: Final = "2024-05-17T10:30:21.123456789Z"


def fail(message: str) -> NoReturn:
    """Fail the test with ``message`` alone (no traceback: the message says it all)."""
    pytest.fail(message, pytrace=False)


def short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def case(*values: Any, reqs: tuple[str, ...], codec: str | None = None, name: str = "") -> Any:
    """A ``pytest.param`` whose id ends with its requirement ids (``json-COD-003``)."""
    marks: list[Any] = [pytest.mark.requirement(*reqs)]
    if codec is not None:
        marks.append(pytest.mark.symphony_codec(codec))
    parts = [p for p in (codec, name) if p]
    return pytest.param(*values, marks=marks, id="-".join([*parts, *reqs]))


def expect_error(code: str, what: str, fn: Callable[[], Any]) -> ImplError:
    """Run ``fn``; it must raise :class:`ImplError` with ``code``."""
    try:
        result = fn()
    except ImplError as e:
        if e.code != code:
            fail(f"{what}: expected the error {code}, got {e.code} ({e.message})")
        return e
    fail(f"{what}: expected the error {code}, but it was accepted and returned {short(result)}")


def expect_ok(what: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn``; an :class:`ImplError` fails the test with a clear message."""
    try:
        return fn()
    except ImplError as e:
        fail(f"{what}: expected success, got the error {e.code} ({e.message})")


def expect_same_message(what: str, expected: Any, actual: Any, *, subset: bool = False) -> None:
    diffs = message_diff(expected, actual, subset=subset)
    if diffs:
        fail(f"{what}: the message differs from the expected one:{format_diff(diffs)}")


def names_field(err: ImplError, field: str) -> bool:
    """Whether an error names ``field`` in its ``details.field`` (a dotted path may end with it)."""
    named = err.details.get("field")
    return isinstance(named, str) and (named == field or named.endswith("." + field))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate member {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_strict(data: bytes) -> Any:
    """Parse JSON text as the canonical form demands: UTF-8, no BOM, no NaN, no duplicate names."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise ValueError("starts with a byte order mark")
    text = data.decode("utf-8")
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


@cache
def _message_validator() -> Any:
    jsonschema: Any = importlib.import_module("jsonschema")  # no type stubs

    base = jsonschema.Draft202012Validator

    def pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Any:
        # The schema's patterns are ECMA-262: "$" is the very end ("\Z" in Python).
        if isinstance(instance, str):
            anchored = patrn[:-1] + r"\Z" if patrn.endswith("$") and not patrn.endswith(r"\$") else patrn
            if re.search(anchored, instance) is None:
                yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")

    cls = jsonschema.validators.extend(base, {"pattern": pattern})
    return cls(_spec.message_schema())


def schema_errors(instance: Any) -> list[str]:
    """Where ``instance`` breaks spec/message.schema.json (JSON pointer and message)."""
    errors = sorted(_message_validator().iter_errors(instance), key=lambda e: list(e.absolute_path))
    out = []
    for e in errors:
        pointer = "/" + "/".join(str(p) for p in e.absolute_path)
        out.append(f"{pointer}: {e.message}")
    return out


def base_message(**header: Any) -> dict[str, Any]:
    """A small canonical message; keywords replace header members."""
    h: dict[str, Any] = {
        "id": UUID_A,
        "correlation_id": None,
        "message_type": "Event",
        "source": "service-a",
        "target": "service-b",
        "timestamp": TIMESTAMP,
        "ttl": None,
        "priority": 0,
        "version": dict(CURRENT_VERSION),
    }
    h.update(header)
    return {"header": h, "payload": {"n": 1}, "metadata": {}}


def json_bytes(message: Any) -> bytes:
    return json.dumps(message, ensure_ascii=False, allow_nan=False).encode("utf-8")


class EndpointCache:
    """An implementation's endpoints of one role, one per scheme, started on first use and again
    after a driver restart (a restarted driver lost them). ``role`` None: ``listen(scheme)`` (the
    echo endpoint); else ``listen(scheme, role=role)``, skipped when ``listen`` takes no role."""

    def __init__(self, role: str | None = None) -> None:
        self.role = role
        self._by_scheme: dict[str, tuple[object, int, Endpoint]] = {}

    def get(self, impl: Any, scheme: str) -> Endpoint:
        restarts = getattr(impl, "restarts", 0)
        known = self._by_scheme.get(scheme)
        if known is not None and known[0] is impl and known[1] == restarts:
            return known[2]
        listen = getattr(impl, "listen", None)
        if listen is None:
            raise ImplSkipped(
                "the implementation has no listen (symphony_conformance._impl.TransportImplementation)"
            )
        if self.role is None:
            endpoint: Endpoint = listen(scheme)
        else:
            try:
                takes_role = "role" in inspect.signature(listen).parameters
            except (TypeError, ValueError):
                takes_role = True
            if not takes_role:
                raise ImplSkipped(f"the implementation's listen takes no role: it starts no {self.role}")
            endpoint = listen(scheme, role=self.role)
        self._by_scheme[scheme] = (impl, getattr(impl, "restarts", 0), endpoint)
        return endpoint
