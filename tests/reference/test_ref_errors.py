"""The reference's error classes against the error tables of the spec (ERR-001).

The tables are parsed from the markdown (spec/protocol.md section 2, and the tables later documents
such as spec/bus.md add to it), so a change on either side makes these tests fail.
"""

from __future__ import annotations

import json
import re

import pytest

import symphony_ipc as s
from symphony_conformance import spec_dir

Row = tuple[str, str, bool]  # seed variant, category, recoverable


def _parse_error_tables(text: str) -> dict[str, Row]:
    """code -> row for every markdown table whose header is ``| code | seed... | category | recoverable``."""
    rows: dict[str, Row] = {}
    in_table = False
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if cells[:1] == ["code"] and cells[2:4] == ["category", "recoverable"]:
            in_table = True
            continue
        if not cells:
            in_table = False
            continue
        if in_table and cells[0].startswith("`"):
            assert cells[3] in ("true", "false"), line
            rows[cells[0].strip("`")] = (cells[1].strip("`"), cells[2].strip("`"), cells[3] == "true")
    return rows


def _protocol_section_2() -> dict[str, Row]:
    text = (spec_dir() / "protocol.md").read_text(encoding="utf-8")
    section = re.search(r"^## 2\. Errors$(.*?)^## 3\.", text, re.M | re.S)
    assert section is not None, "spec/protocol.md has no section '## 2. Errors'"
    rows = _parse_error_tables(section.group(1))
    assert len(rows) >= 10, f"parsed only {len(rows)} rows of the error table"
    return rows


def _all_spec_tables() -> dict[str, Row]:
    rows: dict[str, Row] = {}
    for path in sorted(spec_dir().glob("*.md")):
        for code, row in _parse_error_tables(path.read_text(encoding="utf-8")).items():
            assert code not in rows or rows[code] == row, f"{code} defined twice, differently ({path.name})"
            rows[code] = row
    return rows


PROTOCOL_TABLE = _protocol_section_2()
SPEC_TABLE = _all_spec_tables()


def _make(cls: type[s.ProtocolError]) -> s.ProtocolError:
    if cls is s.MissingField:
        return s.MissingField("source")
    if cls is s.InvalidProtocolVersion:
        return s.InvalidProtocolVersion(2, 7)
    return cls("something is wrong")


def test_codes_are_exactly_the_spec_tables() -> None:
    assert set(PROTOCOL_TABLE) <= set(SPEC_TABLE)
    assert {c.value for c in s.ErrorCode} == set(SPEC_TABLE)
    assert set(s.ERROR_TABLE) == set(s.ErrorCode)


def test_protocol_table_is_the_envelope_codes() -> None:
    assert set(PROTOCOL_TABLE) == {
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
    }


def test_every_code_has_its_own_class() -> None:
    assert set(s.ERROR_CLASSES) == set(s.ErrorCode)
    classes = list(s.ERROR_CLASSES.values())
    assert len(set(classes)) == len(classes)
    for code, cls in s.ERROR_CLASSES.items():
        assert issubclass(cls, s.ProtocolError)
        assert cls.code is code


@pytest.mark.parametrize("code", sorted(SPEC_TABLE))
def test_category_and_recoverable_match_the_spec(code: str) -> None:
    variant, category, recoverable = SPEC_TABLE[code]
    assert s.ERROR_TABLE[s.ErrorCode(code)] == (category, recoverable)
    err = _make(s.ERROR_CLASSES[s.ErrorCode(code)])
    assert (err.code.value, err.category, err.recoverable) == (code, category, recoverable)
    if variant != "(new)":  # the class is named after the seed's variant (SerializationError, ...)
        assert type(err).__name__.startswith(variant)


def test_to_dict_shape() -> None:
    err = s.InvalidPriority("priority 5000 is outside [-1000, 1000]", priority=5000)
    assert err.to_dict() == {
        "code": "INVALID_PRIORITY",
        "category": "validation",
        "recoverable": True,
        "message": "priority 5000 is outside [-1000, 1000]",
        "details": {"priority": 5000},
    }
    assert "details" not in s.SerializationError("bad bytes").to_dict()
    missing = s.MissingField("correlation_id").to_dict()
    assert missing["details"] == {"field": "correlation_id"}
    version = s.InvalidProtocolVersion(2, 3)
    assert (version.major, version.minor) == (2, 3)
    assert version.to_dict()["details"] == {"major": 2, "minor": 3}
    assert version.to_dict()["recoverable"] is False


@pytest.mark.parametrize("code", sorted(SPEC_TABLE))
def test_to_dict_validates_against_the_error_schema(code: str) -> None:
    path = spec_dir() / "message.schema.json"
    if not path.exists():
        pytest.skip("spec/message.schema.json is not written yet (written in parallel)")
    import jsonschema

    schema = json.loads(path.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator({**schema, "$ref": "#/$defs/error"})
    doc = _make(s.ERROR_CLASSES[s.ErrorCode(code)]).to_dict()
    validator.validate(doc)
    json.dumps(doc)  # JSON-serialisable as is
    # the schema ties category and recoverable to the code: a wrong flag must not validate
    assert not validator.is_valid({**doc, "recoverable": not doc["recoverable"]})


def test_errors_are_exceptions_with_their_message() -> None:
    with pytest.raises(s.ProtocolError, match="no such thing") as info:
        raise s.UuidParseError("no such thing", field="id")
    assert info.value.message == "no such thing"
    assert info.value.details == {"field": "id"}
    assert "UuidParseError" in repr(info.value)
