"""The JSON Schemas of spec/: valid 2020-12 schemas, in step with spec/protocol.md and the reference."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import jsonschema
import pytest
from spec_support import (
    SPEC,
    EcmaValidator,
    error_table,
    error_validator,
    load_json,
    load_tool,
    message_schema,
    message_validator,
    requirements,
    schema_paths,
)

import symphony_ipc as s
from symphony_ipc import _ids, _model

RUST_EVENT: dict[str, Any] = {
    "header": {
        "id": "6f1c2b7e-3a4d-4e5f-8a9b-0c1d2e3f4a5b",
        "correlation_id": "0b0e3c9a-1f2e-4d3c-9b8a-7f6e5d4c3b2a",
        "message_type": "Event",
        "source": "conductor",
        "target": "pool-manager",
        "timestamp": "2025-12-25T09:18:21.123456789Z",
        "ttl": {"secs": 30, "nanos": 500000000},
        "priority": 100,
        "version": {"major": 1, "minor": 0},
    },
    "payload": {"a": [1.5, None, True], "b": 1},
    "metadata": {"request_id": "req-123"},
}


@pytest.mark.parametrize("path", schema_paths(), ids=lambda p: str(p.relative_to(SPEC)))
def test_schema_passes_the_2020_12_metaschema(path: Any) -> None:
    schema = load_json(path)
    assert schema.get("$schema") == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_schema_ids_are_unique() -> None:
    ids = [load_json(p).get("$id") for p in schema_paths()]
    assert len(ids) == len(set(ids)), ids


def test_error_codes_agree_with_protocol_md_and_the_reference() -> None:
    table = error_table()
    assert len([c for c in table if c in PROTOCOL_MD_CODES]) == 10
    assert message_schema()["$defs"]["errorCode"]["enum"] == list(table)
    assert load_json(SPEC / "vectors.schema.json")["$defs"]["errorCode"]["enum"] == list(table)
    assert {c.value for c in s.ErrorCode} == set(table)
    assert {c.value: v for c, v in s.ERROR_TABLE.items()} == table


@pytest.mark.parametrize("code", sorted(error_table()))
def test_error_schema_encodes_the_table(code: str) -> None:
    category, recoverable = error_table()[code]
    err = s.ERROR_CLASSES[s.ErrorCode(code)].__new__(s.ERROR_CLASSES[s.ErrorCode(code)])
    s.ProtocolError.__init__(err, "boom", field="x")
    wire = err.to_dict()
    assert wire == {
        "code": code,
        "category": category,
        "recoverable": recoverable,
        "message": "boom",
        "details": {"field": "x"},
    }
    error_validator().validate(wire)
    error_validator().validate({k: v for k, v in wire.items() if k != "details"})
    assert not error_validator().is_valid({**wire, "recoverable": not recoverable})
    other = next(c for c, (cat, _) in error_table().items() if cat != category)
    assert not error_validator().is_valid({**wire, "category": error_table()[other][0]})
    assert not error_validator().is_valid({**wire, "code": code.lower()})


def test_patterns_agree_with_the_reference() -> None:
    defs = message_schema()["$defs"]
    assert defs["endpointId"]["pattern"] == _model.ENDPOINT_ID_PATTERN
    assert defs["metadataKey"]["pattern"] == _model.METADATA_KEY_PATTERN
    assert defs["messageId"]["pattern"] == _ids.CANONICAL_UUID
    assert defs["messageType"]["enum"] == [t.value for t in s.MessageType]


def _bad(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    m = copy.deepcopy(RUST_EVENT)
    target: Any = m
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return m


H = "header"
PROTOCOL_MD_CODES = [
    "INVALID_MESSAGE_TYPE",
    "MISSING_FIELD",
    "INVALID_ENDPOINT_ID",
    "INVALID_PRIORITY",
    "TTL_EXPIRED",
    "INVALID_PROTOCOL_VERSION",
    "INVALID_METADATA_KEY",
    "SERIALIZATION",
    "UUID_PARSE",
    "MESSAGE_TOO_LARGE",
]
REJECTED = [
    ("missing-header", (H,), KeyError),
    ("missing-payload", ("payload",), KeyError),
    ("missing-ttl", (H, "ttl"), KeyError),
    ("missing-correlation-id", (H, "correlation_id"), KeyError),
    ("upper-case-id", (H, "id"), RUST_EVENT[H]["id"].upper()),
    ("id-newline", (H, "id"), RUST_EVENT[H]["id"] + "\n"),
    ("type-case", (H, "message_type"), "event"),
    ("source-empty", (H, "source"), ""),
    ("source-newline", (H, "source"), "conductor\n"),
    ("source-129", (H, "source"), "a" * 129),
    ("source-non-ascii", (H, "source"), "conductör"),
    ("timestamp-offset", (H, "timestamp"), "2025-12-25T11:18:21+02:00"),
    ("timestamp-not-shortest", (H, "timestamp"), "2025-12-25T09:18:21.123000Z"),
    ("timestamp-zero-fraction", (H, "timestamp"), "2025-12-25T09:18:21.000Z"),
    ("timestamp-7-digits", (H, "timestamp"), "2025-12-25T09:18:21.1234567Z"),
    ("timestamp-month-13", (H, "timestamp"), "2025-13-25T09:18:21Z"),
    ("timestamp-hour-24", (H, "timestamp"), "2025-12-25T24:18:21Z"),
    ("timestamp-second-60", (H, "timestamp"), "2016-12-31T23:59:60Z"),
    ("timestamp-year-0", (H, "timestamp"), "0000-12-25T09:18:21Z"),
    ("ttl-nanos-1e9", (H, "ttl", "nanos"), 1_000_000_000),
    ("ttl-secs-2-pow-64", (H, "ttl", "secs"), 2**64),
    ("ttl-secs-negative", (H, "ttl", "secs"), -1),
    ("ttl-missing-nanos", (H, "ttl", "nanos"), KeyError),
    ("priority-1001", (H, "priority"), 1001),
    ("priority-string", (H, "priority"), "high"),
    ("priority-bool", (H, "priority"), True),
    ("version-65536", (H, "version", "major"), 65536),
    ("metadata-bad-key", ("metadata",), {"1x": 1}),
    ("metadata-key-65", ("metadata",), {"k" * 65: 1}),
    ("metadata-array", ("metadata",), []),
    ("response-null-correlation", (H, "message_type"), "Response"),
]


def test_message_schema_accepts_canonical_messages() -> None:
    message_validator().validate(RUST_EVENT)
    for m in (
        _bad((H, "timestamp"), "9999-12-31T23:59:59.999999999Z"),
        _bad((H, "timestamp"), "0001-01-01T00:00:00Z"),
        _bad((H, "ttl"), {"secs": 2**64 - 1, "nanos": 999_999_999}),
        _bad((H, "source"), "a" * 128),
        _bad(("metadata",), {"k" * 64: None, "_": 1}),
        _bad(("payload",), None),
        _bad((H, "unknown"), 1),  # VER-005: unknown members are allowed
        _bad((H, "message_type"), "Response"),  # with a correlation id
    ):
        message_validator().validate(m)


@pytest.mark.parametrize(("path", "value"), [r[1:] for r in REJECTED], ids=[r[0] for r in REJECTED])
def test_message_schema_rejects(path: tuple[str, ...], value: Any) -> None:
    m = _bad(path, value)
    if path[-1] == "message_type" and value == "Response":
        m[H]["correlation_id"] = None
    assert not message_validator().is_valid(m)


@pytest.mark.parametrize(
    "ns",
    [
        0,
        1,
        -1,
        999_999_999,
        1_000_000,
        1_000,
        123_456_789_000,
        -62135596800 * 10**9,
        253402300799 * 10**9 + 999_999_999,
    ]
    + [i * 7_777_777_777_777_777 + i for i in range(-8, 32)],
)
def test_timestamp_pattern_is_the_canonical_form(ns: int) -> None:
    """Every canonical form the reference writes matches, and the longer spellings of it do not."""
    pattern = re.compile(message_schema()["$defs"]["timestamp"]["pattern"])
    text = s.format_rfc3339(ns)
    assert pattern.fullmatch(text)
    if "." not in text:
        longer = [text[:-1] + ".000Z", text[:-1] + ".000000Z", text[:-1] + ".000000000Z"]
    else:
        frac = text[20:-1]
        longer = [text[:20] + frac + "0" * k + "Z" for k in (3, 6) if len(frac) + k <= 9]
    for other in longer:
        assert not pattern.fullmatch(other), other


def test_requirements_json_is_up_to_date() -> None:
    tool = load_tool("gen_requirements")
    assert (SPEC / "requirements.json").read_text(encoding="utf-8") == tool.render(), (
        "spec/requirements.json is stale: run python tools/gen_requirements.py"
    )


def test_every_requirement_id_in_the_spec_text_exists() -> None:
    known = set(requirements())
    for md in sorted(SPEC.glob("*.md")):
        text = md.read_text(encoding="utf-8")
        defined = set(re.findall(r"^- \*\*([A-Z]{2,4}-\d{3})\*\*", text, re.M))
        assert defined <= known, (md.name, defined - known)
        mentioned = set(re.findall(r"\b([A-Z]{2,4}-\d{3})\b", text))
        assert mentioned <= known, (md.name, sorted(mentioned - known))
    assert {r["id"] for r in requirements().values() if r["document"] == "spec/protocol.md"} >= {
        "ENV-001",
        "ERR-001",
        "PRI-001",
        "TTL-001",
        "VER-001",
        "COD-001",
        "COD-101",
    }


def test_python_re_dollar_pitfall_is_handled() -> None:
    """The schemas' patterns are ECMA-262; plain jsonschema (Python re) lets a final newline through."""
    m = _bad((H, "source"), "conductor\n")
    assert jsonschema.Draft202012Validator(message_schema()).is_valid(m)
    assert not EcmaValidator(message_schema()).is_valid(m)
    assert json.dumps(m)  # the instance is plain JSON
