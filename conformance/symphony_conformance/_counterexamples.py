"""Turning the failing example of a property test into golden vectors (``--save-counterexamples``).

When a property test fails, the plugin keeps the operations of the failing example (the shrunk
counterexample: the last example Hypothesis runs) with the case (:mod:`._recording`). Each
operation becomes one vector of ``docs/vectors-format.md``, its expected answer the reference's:

* ``decode`` / ``receive``: the same bytes; ``valid`` with the reference's message, ``invalid``
  with its error, ``acceptable`` when the input is a tolerated (non-canonical) spelling or a fault
  the spec lets a decoder accept (duplicate members, very deep nesting);
* ``encode``: a ``decode`` vector of the reference's encoding, flag ``encode-golden`` (so the
  implementation's encoding must reproduce it);
* ``build``, ``order``, ``is_expired`` (``expiry``), ``is_compatible`` (``compatible``),
  ``expects_response``: the operation's own vector.

Only the operations where the implementation disagreed with the reference are kept (they
reproduce the failure on their own); when it agreed with each of them (a law relating several
operations, such as "two built ids differ"), all of them are written and the file is marked as not
reproducing. The rejection sweep (``test_rejects_invalid_messages``) keeps its shortest failing
input in the failure text; that input becomes a ``decode`` vector.

Files are named ``counterexample-<test>-<hash>.json``, vector ids ``counterexample/<test>-<hash>``
(``-<n>`` for the n-th operation); replay them with ``symphony-conformance run --vectors DIR``.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ._data import canonical_timestamp, data_diff
from ._recording import bytes_of, with_reference_answers
from ._results import CaseRecord

AREA: Final = "counterexample"
FLAG: Final = "counterexample"
_SWEEP_PREFIX: Final = "decoding (json) "


@dataclass
class Counterexample:
    """The vectors one failing case became."""

    case: str
    file: str | None
    vector_ids: list[str] = field(default_factory=list)
    reproduces: bool = False
    """Whether at least one vector is an operation the implementation got wrong on its own."""
    note: str = ""
    stem: str = ""
    """The file name's and the vector ids' common part (``<test>-<hash>``)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "file": self.file,
            "vectors": list(self.vector_ids),
            "reproduces": self.reproduces,
            "note": self.note,
        }


def slug(nodeid: str) -> str:
    """``suite/test_x.py::test_round_trip[json-COD-003]`` -> ``test_round_trip-json-cod-003``."""
    name = nodeid.rpartition("::")[2] or nodeid
    text = re.sub(r"[^a-z0-9_.-]+", "-", name.lower()).strip("-._")
    return text[:80] or "case"


def _ts(ns: Any) -> str | None:
    try:
        return canonical_timestamp(int(ns))
    except (TypeError, ValueError):
        return None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise KeyError(key)
        out[key] = value
    return out


def _may_be_accepted(data: bytes) -> bool:
    """JSON the spec lets a decoder accept although the reference rejects it: duplicate member
    names (COD-007), nesting deeper than the 32 levels every decoder takes (ENV-014)."""
    try:
        json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except KeyError:
        return True
    except RecursionError:
        return True
    except (ValueError, UnicodeDecodeError):
        return False
    return bool(data.count(b"[") + data.count(b"{") > 32 and _depth(data) > 32)


def _depth(data: bytes) -> int:
    depth = best = 0
    in_string = escaped = False
    for byte in data:
        ch = chr(byte)
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            best = max(best, depth)
        elif ch in "]}":
            depth -= 1
    return best


def _is_canonical(codec: str, data: bytes, message: Any) -> bool:
    """Whether ``data`` is the canonical encoding of ``message`` (JSON: as parsed data)."""
    from ._adapters import ReferenceImplementation
    from ._impl import ImplError
    from .suite._support import parse_json_strict

    try:
        canonical = ReferenceImplementation().encode(codec, message)
    except ImplError:
        return False
    if codec == "msgpack":
        return canonical == data
    try:
        return not data_diff(parse_json_strict(canonical), parse_json_strict(data))
    except (ValueError, UnicodeDecodeError):
        return False


def _input_of(codec: str, form: Mapping[str, Any]) -> dict[str, Any]:
    if codec == "json" and "data_text" in form:
        return {"json": form["data_text"]}
    return {"hex": bytes_of(form).hex()}


def _error_vector(error: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"result": "invalid", "error": error["code"]}
    named = (error.get("details") or {}).get("field")
    if error["code"] == "MISSING_FIELD" and isinstance(named, str) and named:
        out["error_field"] = named.rpartition(".")[2]
    return out


def _decoded(codec: str, call: Mapping[str, Any], answer: Mapping[str, Any]) -> dict[str, Any] | None:
    data = bytes_of(call)
    if "error" in answer:
        graded = _error_vector(answer["error"])
        if codec == "json" and answer["error"]["code"] == "SERIALIZATION" and _may_be_accepted(data):
            graded = {"result": "acceptable", "error": "SERIALIZATION"}
        return {"codec": codec, "input": _input_of(codec, call), **graded}
    if "result" not in answer:
        return None
    message = answer["result"]
    result = "valid" if _is_canonical(codec, data, message) else "acceptable"
    return {
        "codec": codec,
        "input": _input_of(codec, call),
        "result": result,
        "expected": {"message": message},
    }


def vector_body(call: Mapping[str, Any], answer: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The operation-specific members of the vector of one recorded call (no id, description,
    requirements), given the reference's answer; None when no vector can express it."""
    if answer is None or "raised" in answer:
        return None
    op = call["op"]
    if op == "decode":
        body = _decoded(call["codec"], call, answer)
        return None if body is None else {"operation": "decode", **body}
    if op == "receive":
        now = _ts(call.get("now_ns"))
        body = _decoded(call["codec"], call, answer)
        if body is None or now is None:
            return None
        major, minor = call["receiver_version"]
        body["input"]["receiver"] = {"version": {"major": major, "minor": minor}, "now": now}
        return {"operation": "receive", **body}
    if op == "encode":
        if "result" not in answer:
            return None  # "the encoder must refuse" is no vector operation
        from ._adapters import ReferenceImplementation
        from ._impl import ImplError

        codec = call["codec"]
        try:
            message = ReferenceImplementation().decode(codec, bytes_of(answer["result"]))
        except ImplError:
            return None
        return {
            "operation": "decode",
            "codec": codec,
            "flags": [FLAG, "encode-golden"],
            "input": _input_of(codec, answer["result"]),
            "result": "valid",
            "expected": {"message": message},
        }
    if op == "build":
        now = _ts(call.get("now_ns"))
        if now is None:
            return None
        inp = {"fields": call["fields"], "now": now}
        if "error" in answer:
            return {"operation": "build", "input": inp, **_error_vector(answer["error"])}
        built = answer["result"]
        header = {k: v for k, v in built.get("header", {}).items() if k != "id"}
        match = {**built, "header": header}
        return {"operation": "build", "input": inp, "result": "valid", "expected": {"match": match}}
    if "error" in answer:
        if op == "expects_response":
            inp = {"message_type": call["message_type"]}
            return {"operation": op, "input": inp, **_error_vector(answer["error"])}
        return None
    got = answer["result"]
    if op == "order":
        return {
            "operation": "order",
            "input": {"messages": call["messages"]},
            "result": "valid",
            "expected": {"order": got},
        }
    if op == "is_expired":
        now = _ts(call.get("now_ns"))
        if now is None:
            return None
        return {
            "operation": "expiry",
            "input": {"message": call["message"], "now": now},
            "result": "valid",
            "expected": {"expired": got},
        }
    if op == "is_compatible":
        a, b = call["a"], call["b"]
        return {
            "operation": "compatible",
            "input": {"a": {"major": a[0], "minor": a[1]}, "b": {"major": b[0], "minor": b[1]}},
            "result": "valid",
            "expected": {"compatible": got},
        }
    if op == "expects_response":
        return {
            "operation": "expects_response",
            "input": {"message_type": call["message_type"]},
            "result": "valid",
            "expected": {"expects_response": got},
        }
    return None


def sweep_call(falsifying: str | None) -> dict[str, Any] | None:
    """The decode call of the rejection sweep's failure text (``decoding (json) b'...'``)."""
    if not falsifying or not falsifying.startswith(_SWEEP_PREFIX):
        return None
    try:
        data = ast.literal_eval(falsifying[len(_SWEEP_PREFIX) :].strip())
    except (ValueError, SyntaxError):
        return None  # cut in the middle (a long input): not replayable
    if not isinstance(data, bytes):
        return None
    try:
        return {"op": "decode", "codec": "json", "data_text": data.decode("utf-8"), "example": True}
    except UnicodeDecodeError:
        return {"op": "decode", "codec": "json", "data_hex": data.hex(), "example": True}


def _schema_problems(doc: Mapping[str, Any]) -> list[str]:
    from ._vectors import _schema_errors

    return _schema_errors(doc, Path("counterexample.json"))


def counterexample_for(
    record: CaseRecord, *, seed: int | None = None
) -> tuple[dict[str, Any] | None, Counterexample]:
    """The vector file (a document of ``spec/vectors.schema.json``) of one failed property case."""
    calls: list[dict[str, Any]] = [c for c in record.calls if c.get("example")]
    from_sweep = False
    if not calls:
        swept = sweep_call(record.falsifying_example)
        if swept is not None:
            calls, from_sweep = [swept], True
    result = Counterexample(case=record.nodeid, file=None)
    if not calls:
        result.note = "no operation of the failing example was recorded"
        return None, result
    answered = with_reference_answers(calls)
    # The sweep fails only on inputs the implementation got wrong.
    disagreeing = answered if from_sweep else [c for c in answered if c.get("agrees") is False]
    chosen = disagreeing or answered
    bodies = [b for b in (vector_body(c, c.get("reference")) for c in chosen) if b is not None]
    if not bodies:
        result.note = "no operation of the failing example can be written as a vector"
        return None, result
    digest = hashlib.sha256(
        json.dumps([record.nodeid, bodies], sort_keys=True, ensure_ascii=False).encode("utf-8")
    ).hexdigest()[:10]
    base = f"{slug(record.nodeid)}-{digest}"
    seed_note = f" (seed {seed})" if seed is not None else ""
    how = (
        "an operation the implementation answered differently from the reference"
        if disagreeing
        else "an operation of the failing example (the implementation agreed with the reference on each "
        "alone: the failed law relates several operations)"
    )
    vectors: list[dict[str, Any]] = []
    for i, body in enumerate(bodies, 1):
        vid = f"{AREA}/{base}" if len(bodies) == 1 else f"{AREA}/{base}-{i}"
        flags = body.pop("flags", [FLAG])
        vector = {
            "id": vid,
            "description": f"counterexample of {record.nodeid}{seed_note}: {how}",
            "requirements": list(record.requirements),
            **body,
            "flags": flags,
        }
        if not _schema_problems({"area": AREA, "description": "x", "vectors": [vector]}):
            vectors.append(vector)
    if not vectors:
        result.note = "the failing example's operations do not fit the vector format"
        return None, result
    doc = {
        "area": AREA,
        "description": f"The failing example of {record.nodeid}{seed_note}, as golden vectors "
        "(symphony-conformance run --save-counterexamples); expected answers are the reference's.",
        "vectors": vectors,
    }
    result.vector_ids = [v["id"] for v in vectors]
    result.stem = base
    result.reproduces = bool(disagreeing)
    if not disagreeing:
        result.note = "the implementation agreed with the reference on each operation alone"
    return doc, result


def save_counterexamples(
    records: Sequence[CaseRecord], directory: str | Path, *, seed: int | None = None
) -> list[Counterexample]:
    """Write one vector file per failed case that carries a Hypothesis counterexample."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    out: list[Counterexample] = []
    for record in records:
        if record.outcome != "failed" or not record.falsifying_example:
            continue
        doc, result = counterexample_for(record, seed=seed)
        if doc is not None:
            path = root / f"{AREA}-{result.stem}.json"
            path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            result.file = str(path)
        out.append(result)
    return out
