"""Message ids: fresh random v4 UUIDs (ENV-002, ENV-003) and UUID parsing (ENV-006, COD-006)."""

from __future__ import annotations

import os
import re
import uuid

import pytest

import symphony_ipc as s
from symphony_ipc._ids import uuid_from_bytes, uuid_to_bytes

V4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_new_id_is_a_canonical_v4_uuid() -> None:
    for _ in range(1000):
        value = s.new_id()
        assert V4.fullmatch(value), value
        parsed = uuid.UUID(value)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == value


def test_new_ids_are_unique_and_random_in_every_free_position() -> None:
    ids = [s.new_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    # every one of the 122 random bits takes both values somewhere: catches a stuck or short source
    ints = [uuid.UUID(i).int for i in ids]
    ored, anded = 0, (1 << 128) - 1
    for v in ints:
        ored |= v
        anded &= v
    fixed = (0xF << 76) | (0x3 << 62)  # version nibble and variant bits
    assert (ored ^ anded) | fixed == (1 << 128) - 1


def _ids_from_child(count: int) -> tuple[list[str], list[str]]:
    """Fork; the child and the parent each draw ``count`` ids right after the fork."""
    s.new_id()  # make sure the parent holds a partly used pool the child would inherit
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            os.close(read_fd)
            data = "\n".join(s.new_id() for _ in range(count)).encode()
            with os.fdopen(write_fd, "wb") as out:
                out.write(data)
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    parent_ids = [s.new_id() for _ in range(count)]
    with os.fdopen(read_fd, "rb") as inp:
        child_ids = inp.read().decode().split("\n")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return parent_ids, child_ids


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_and_parent_draw_distinct_ids() -> None:
    parent_ids, child_ids = _ids_from_child(64)
    assert len(child_ids) == 64
    assert all(V4.fullmatch(i) for i in child_ids)
    assert not set(parent_ids) & set(child_ids)


def test_builder_stamps_distinct_ids() -> None:
    builder = s.MessageBuilder().message_type("Event").source("a").target("b")
    assert builder.build().header.id != builder.build().header.id


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("0191c3a2-6a4f-4c3e-9a6b-1f2e3d4c5b6a", "0191c3a2-6a4f-4c3e-9a6b-1f2e3d4c5b6a"),
        ("0191C3A2-6A4F-4C3E-9A6B-1F2E3D4C5B6A", "0191c3a2-6a4f-4c3e-9a6b-1f2e3d4c5b6a"),
        ("0191c3a26a4f4c3e9a6b1f2e3d4c5b6a", "0191c3a2-6a4f-4c3e-9a6b-1f2e3d4c5b6a"),
        ("00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000"),
        ("ffffffff-ffff-1fff-0fff-ffffffffffff", "ffffffff-ffff-1fff-0fff-ffffffffffff"),  # any version
    ],
)
def test_parse_uuid_accepts_and_canonicalises(text: str, canonical: str) -> None:
    assert s.parse_uuid(text) == canonical


@pytest.mark.parametrize(
    "value",
    [
        "",
        "0191c3a2-6a4f-4c3e-9a6b-1f2e3d4c5b6",
        "0191c3a2-6a4f-4c3e-9a6b-1f2e3d4c5b6a0",
        "0191c3a2-6a4f-4c3e-9a6b-1f2e3d4c5b6a\n",  # "$" in a Python pattern lets this through
        "\n0191c3a2-6a4f-4c3e-9a6b-1f2e3d4c5b6a",
        "0191c3a26a4f-4c3e-9a6b-1f2e3d4c5b6a",
        "{0191c3a2-6a4f-4c3e-9a6b-1f2e3d4c5b6a}",
        "0191c3a2-6a4f-4c3e-9a6b-1f2e3d4c5b6g",
        "0191c3a2-6a4f-4c3e-9a6b-1f2e3d4c5b6\u0661",
        None,
        42,
        b"0191c3a2-6a4f-4c3e-9a6b-1f2e3d4c5b6a",
    ],
)
def test_parse_uuid_rejects_with_uuid_parse(value: object) -> None:
    with pytest.raises(s.UuidParseError) as info:
        s.parse_uuid(value, "correlation_id")
    assert info.value.code is s.ErrorCode.UUID_PARSE
    assert info.value.details["field"] == "correlation_id"


def test_uuid_bytes_are_rfc_9562_byte_order() -> None:
    for _ in range(100):
        value = s.new_id()
        assert uuid_to_bytes(value) == uuid.UUID(value).bytes
        assert uuid_from_bytes(uuid.UUID(value).bytes) == value
