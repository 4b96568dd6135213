"""Loading the spec and the golden vectors, and running vectors against the reference.

Shared by the tests in this folder; kept free of pytest so a harness can reuse it.
"""

from __future__ import annotations

import importlib.util
import json
import re
import struct
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

import symphony_ipc as s

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "spec"
FIXTURES = ROOT / "fixtures"
TOOLS = ROOT / "tools"

#: The operations spec/protocol.md defines; others (frames, handshake) belong to other documents.
ENVELOPE_OPERATIONS = ("decode", "receive", "build", "order", "expiry", "compatible", "expects_response")
V4_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}").fullmatch


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def load_tool(name: str) -> ModuleType:
    """Import ``tools/NAME.py`` (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"_tool_{name}", TOOLS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------ schemas, ECMA-262 style


@cache
def _ecma_regex(pattern: str) -> re.Pattern[str]:
    """JSON Schema patterns are ECMA-262: ``$`` anchors at the very end and ``\\d`` is ASCII.

    Python's ``$`` also matches before a final newline, so "conductor\\n" would pass an endpoint
    pattern; ``\\Z`` is the ECMA meaning."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern, re.ASCII)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


EcmaValidator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _pattern})


def schema_paths() -> list[Path]:
    return sorted(SPEC.rglob("*.schema.json"))


@cache
def message_schema() -> dict[str, Any]:
    schema: dict[str, Any] = load_json(SPEC / "message.schema.json")
    return schema


@cache
def message_validator() -> Any:
    return EcmaValidator(message_schema())


@cache
def error_validator() -> Any:
    schema = message_schema()
    return EcmaValidator({**schema, "$ref": "#/$defs/error"})


@cache
def vectors_validator() -> Any:
    return EcmaValidator(load_json(SPEC / "vectors.schema.json"))


@cache
def requirements() -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in load_json(SPEC / "requirements.json")["requirements"]}


@cache
def error_table() -> dict[str, tuple[str, bool]]:
    """code -> (category, recoverable), parsed from the error tables of spec/*.md: section 2 of
    spec/protocol.md, then the codes later documents (spec/bus.md) add."""
    table: dict[str, tuple[str, bool]] = {}
    row = re.compile(r"^\| `([A-Z_]+)` \| [^|]* \| `([a-z]+)` \| (true|false) \|")
    docs = [SPEC / "protocol.md", *sorted(p for p in SPEC.glob("*.md") if p.name != "protocol.md")]
    for md in docs:
        for line in md.read_text(encoding="utf-8").splitlines():
            if m := row.match(line):
                assert m.group(1) not in table, f"{md.name} redefines {m.group(1)}"
                table[m.group(1)] = (m.group(2), m.group(3) == "true")
    return table


# -------------------------------------------------------------------------------------- vectors


def fixture_paths() -> list[Path]:
    return sorted(FIXTURES.glob("*.json"))


@cache
def all_vectors() -> tuple[dict[str, Any], ...]:
    out: list[dict[str, Any]] = []
    for path in fixture_paths():
        doc = load_json(path)
        for vector in doc["vectors"]:
            out.append({**vector, "_file": path.name})
    return tuple(out)


def vectors(*operations: str) -> list[dict[str, Any]]:
    ops = operations or ENVELOPE_OPERATIONS
    return [v for v in all_vectors() if v["operation"] in ops]


def input_bytes(vector: dict[str, Any]) -> bytes:
    inp = vector["input"]
    if "json" in inp:
        return str(inp["json"]).encode("utf-8", "surrogatepass")
    if "hex" in inp:
        return bytes.fromhex(inp["hex"])
    return json.dumps(inp["message"], ensure_ascii=False, allow_nan=False).encode("utf-8")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_strictly(data: bytes) -> tuple[bool, Any]:
    """(True, value) when ``data`` is one RFC 8259 JSON text in UTF-8 without a BOM, else (False, None).

    Python's json is laxer than RFC 8259 in two ways it cannot be told about: lone surrogate
    escapes and duplicate names; vectors for those are flagged (schema-blind, or last-wins)."""
    try:
        text = data.decode("utf-8")
        if text.startswith("\ufeff"):
            return False, None
        return True, json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False, None


def same(a: Any, b: Any) -> bool:
    """Equality of JSON data that also tells 1 from 1.0 from True, and 0.0 from -0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack(">d", a) == struct.pack(">d", b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def matches(partial: Any, actual: Any) -> bool:
    """``build`` vectors: ``actual`` contains ``partial`` (objects as subsets, other values equal).

    An empty object in ``partial`` matches only an empty object, so ``"metadata": {}`` checks the
    default instead of matching anything."""
    if isinstance(partial, dict):
        if not isinstance(actual, dict):
            return False
        if not partial:
            return not actual
        return all(k in actual and matches(v, actual[k]) for k, v in partial.items())
    return same(partial, actual)


def last_segment(field: object) -> str:
    return str(field).rsplit(".", 1)[-1]


# ----------------------------------------------------------------------------- the reference


def now_ns(text: str) -> int:
    return s.parse_rfc3339(text)


def ref_decode(vector: dict[str, Any]) -> s.Message:
    """Run a decode or receive vector's input through the reference; raises ProtocolError."""
    data = input_bytes(vector)
    codec = vector["codec"]
    if vector["operation"] == "receive":
        receiver = vector["input"]["receiver"]
        return s.receive(
            data,
            codec,
            now_ns=now_ns(receiver["now"]),
            version=s.ProtocolVersion(receiver["version"]["major"], receiver["version"]["minor"]),
        )
    return s.decode(data, codec)


def ref_build(fields: dict[str, Any], now: str) -> s.Message:
    return s.build_from_fields(fields, s.ManualClock(now_ns(now)))


def ref_order(messages: list[dict[str, Any]]) -> list[int]:
    built = [s.message_from_data(m) for m in messages]
    index = {id(m): i for i, m in enumerate(built)}
    return [index[id(m)] for m in s.order(built)]
