"""Loading the golden vectors (``fixtures/*.json``, format: docs/vectors-format.md).

Vector files are checked against ``spec/vectors.schema.json`` when it exists, and always for the
few things the suite relies on (unique ids, known operations, results and requirement ids), so a
malformed vector is a clear harness error at collection time, never a confusing test failure.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final

from . import _spec
from ._resources import fixtures_dir, spec_dir

#: The message operations the suite drives through the :class:`~._impl.Implementation` interface
#: (suite/test_vectors.py).
OPERATIONS: Final = ("decode", "receive", "build", "order", "expiry", "compatible", "expects_response")
#: The operations of spec/transport.md, driven through :class:`~._impl.TransportImplementation`
#: (suite/test_transport.py).
TRANSPORT_OPERATIONS: Final = ("frames", "handshake")
#: Operations loaded and schema-checked but not driven by this harness (none at present).
UNDRIVEN_OPERATIONS: Final[tuple[str, ...]] = ()
RESULTS: Final = ("valid", "invalid", "acceptable")


class VectorError(Exception):
    """A vector file is unreadable or malformed (a harness error)."""


@dataclass(frozen=True)
class Vector:
    id: str
    description: str
    requirements: tuple[str, ...]
    operation: str
    result: str
    input: dict[str, Any]
    flags: tuple[str, ...] = ()
    codec: str | None = None
    expected: dict[str, Any] | None = None
    error: str | None = None
    error_field: str | None = None
    """With ``MISSING_FIELD``: the member the error must name (in its ``details.field``)."""
    file: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def driven(self) -> bool:
        """Whether suite/test_vectors.py drives this vector (a message operation)."""
        return self.operation in OPERATIONS

    @property
    def transport(self) -> bool:
        """Whether this is a ``frames`` or ``handshake`` vector (suite/test_transport.py)."""
        return self.operation in TRANSPORT_OPERATIONS

    @property
    def profiles(self) -> list[str]:
        return _spec.profiles_of(self.requirements)

    def input_bytes(self) -> bytes:
        """The exact bytes of a ``decode``/``receive`` input."""
        inp = self.input
        if "json" in inp:
            text = inp["json"]
            # "surrogatepass": a lone surrogate in the vector's text must reach the decoder as bytes.
            return str(text).encode("utf-8", "surrogatepass")
        if "hex" in inp:
            try:
                return bytes.fromhex(inp["hex"])
            except (TypeError, ValueError) as e:
                raise VectorError(f"{self.id}: input.hex is not hexadecimal: {e}") from None
        if "message" in inp:
            if self.codec != "json":
                raise VectorError(f"{self.id}: input.message is only for the JSON codec")
            return json.dumps(inp["message"], ensure_ascii=False, allow_nan=False).encode("utf-8")
        raise VectorError(f"{self.id}: input has none of json, hex, message")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise VectorError(f"cannot read {path}: {e}") from None


def _schema_errors(doc: Any, path: Path) -> list[str]:
    schema_path = spec_dir() / "vectors.schema.json"
    if not schema_path.exists():
        return []
    jsonschema: Any = importlib.import_module("jsonschema")  # no type stubs

    schema = _read(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{path.name}: {e.json_path}: {e.message}"
        for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))[:5]
    ]


def _vector(raw: Any, path: Path) -> Vector:
    where = f"{path.name}: vector {raw.get('id', '?') if isinstance(raw, dict) else '?'}"
    if not isinstance(raw, dict):
        raise VectorError(f"{where}: not an object")
    try:
        vid, op, result = raw["id"], raw["operation"], raw["result"]
        reqs = tuple(raw["requirements"])
        inp = raw["input"]
    except (KeyError, TypeError) as e:
        raise VectorError(f"{where}: missing member {e}") from None
    if op not in OPERATIONS and op not in TRANSPORT_OPERATIONS and op not in UNDRIVEN_OPERATIONS:
        raise VectorError(f"{where}: unknown operation {op!r}")
    if result not in RESULTS:
        raise VectorError(f"{where}: unknown result {result!r}")
    if not reqs:
        raise VectorError(f"{where}: no requirements")
    if not isinstance(inp, dict):
        raise VectorError(f"{where}: input is not an object")
    try:
        _spec.profiles_of(reqs)
    except _spec.SpecError as e:
        raise VectorError(f"{where}: {e}") from None
    codec = raw.get("codec")
    if op in ("decode", "receive") and codec not in ("json", "msgpack"):
        raise VectorError(f"{where}: {op} needs codec json or msgpack, got {codec!r}")
    if op in TRANSPORT_OPERATIONS:
        _check_transport_vector(raw, where)
    if op in OPERATIONS:
        if result == "valid" and not isinstance(raw.get("expected"), dict):
            raise VectorError(f"{where}: a valid vector needs expected")
        if (
            result == "invalid"
            and op in ("decode", "receive", "build")
            and not isinstance(raw.get("error"), str)
        ):
            raise VectorError(f"{where}: an invalid vector needs error")
    return Vector(
        id=vid,
        description=str(raw.get("description", "")),
        requirements=reqs,
        operation=op,
        result=result,
        input=inp,
        flags=tuple(raw.get("flags", ())),
        codec=codec,
        expected=raw.get("expected"),
        error=raw.get("error"),
        error_field=raw.get("error_field"),
        file=path.name,
        raw=raw,
    )


def _check_transport_vector(raw: dict[str, Any], where: str) -> None:
    """What suite/test_transport.py relies on in a ``frames`` / ``handshake`` vector."""
    inp = raw["input"]
    try:
        bytes.fromhex(inp["hex"])
    except (KeyError, TypeError, ValueError) as e:
        raise VectorError(f"{where}: input.hex is missing or not hexadecimal ({e!r})") from None
    if not isinstance(inp.get("eof", True), bool):
        raise VectorError(f"{where}: input.eof is not a boolean")
    if raw["operation"] == "handshake":
        role = inp.get("role")
        if role not in ("client", "server"):
            raise VectorError(f"{where}: input.role must be client or server, got {role!r}")
        if not isinstance(inp.get(role, {}), dict):
            raise VectorError(f"{where}: input.{role} is not an object")
    elif inp.get("mode", "frames") not in ("frames", "ndjson"):
        raise VectorError(f"{where}: input.mode must be frames or ndjson")
    if raw["result"] == "valid" and not isinstance(raw.get("expected"), dict):
        raise VectorError(f"{where}: a valid vector needs expected")
    if raw["result"] == "invalid" and not isinstance(raw.get("error"), str):
        raise VectorError(f"{where}: an invalid vector needs error")


@cache
def load_vectors(directory: Path | None = None, *, schema_check: bool | None = None) -> tuple[Vector, ...]:
    """Every vector of ``directory`` (default: the bundled ``fixtures/``), files in name order.

    ``schema_check`` (default: only for a directory other than the bundled one) validates each
    file against ``spec/vectors.schema.json``; the bundled vectors are validated by the project's
    own tests, and the check costs about a second per process.
    """
    root = Path(directory) if directory is not None else fixtures_dir()
    if schema_check is None:
        schema_check = directory is not None or bool(os.environ.get("SYMPHONY_FIXTURES_DIR"))
    if not root.is_dir():
        raise VectorError(f"vector directory {root} does not exist")
    out: list[Vector] = []
    seen: dict[str, str] = {}
    for path in sorted(root.glob("*.json")):
        doc = _read(path)
        problems = _schema_errors(doc, path) if schema_check else []
        if problems:
            raise VectorError("vectors do not match spec/vectors.schema.json:\n  " + "\n  ".join(problems))
        if not isinstance(doc, dict) or not isinstance(doc.get("vectors"), list):
            raise VectorError(f"{path.name}: expected an object with a 'vectors' array")
        for raw in doc["vectors"]:
            vector = _vector(raw, path)
            if vector.id in seen:
                raise VectorError(f"duplicate vector id {vector.id!r} in {seen[vector.id]} and {path.name}")
            seen[vector.id] = path.name
            out.append(vector)
    return tuple(out)


def vector_counts(vectors: tuple[Vector, ...]) -> dict[str, int]:
    """How many vectors name each requirement id."""
    counts: dict[str, int] = {}
    for v in vectors:
        for rid in v.requirements:
            counts[rid] = counts.get(rid, 0) + 1
    return counts
