"""Fuzzing the decoders (spec/security.md ROB-004, spec/protocol.md ENV-014): random bytes and
mutations of the golden vectors; the only outcomes are a message or a typed ProtocolError, within
bounded time and memory. A decoded message re-encodes, and its encoding is stable.

Short in CI (150 examples a test, derandomized); ``SYMPHONY_FUZZ=thorough`` for 25,000 each.
"""

# ruff: noqa: PT017  (a fuzz oracle inspects the typed error it caught)
from __future__ import annotations

import atexit
import contextlib

import pytest
from fuzz_support import FUZZ, Tally, any_bytes, corpus, peak_memory, watchdog
from hypothesis import given, settings
from hypothesis import strategies as st

import symphony_ipc as s
from symphony_ipc import ERROR_TABLE, ErrorCode, Message, ProtocolError, decode, encode

TALLIES = {codec: Tally(f"decode_{codec}") for codec in ("json", "msgpack")}
atexit.register(lambda: [print(t.report()) for t in TALLIES.values() if t.total > 1000])


def _oracle(data: bytes, codec: s.Codec) -> None:
    tally = TALLIES[codec]
    with watchdog():
        try:
            msg = decode(data, codec)
        except ProtocolError as e:
            assert e.code in ERROR_TABLE, f"an unknown code {e.code!r}"
            wire = e.to_dict()
            assert wire["code"] in {c.value for c in ErrorCode}
            assert (wire["category"], wire["recoverable"]) == ERROR_TABLE[e.code]
            tally.add(e.code.value)
            return
        assert isinstance(msg, Message)
        # what decodes re-encodes (or is refused with a typed error), and re-encoding is stable
        try:
            again = encode(msg, codec)
        except ProtocolError as e:
            tally.add(f"decoded, re-encode refused {e.code.value}")
            return
        assert encode(decode(again, codec), codec) == again
        tally.add("message")


@FUZZ
@given(data=any_bytes(corpus("json")))
def test_json_decoder_outcomes_are_typed(data: bytes) -> None:
    _oracle(data, "json")


@FUZZ
@given(data=any_bytes(corpus("msgpack")))
def test_msgpack_decoder_outcomes_are_typed(data: bytes) -> None:
    _oracle(data, "msgpack")


@FUZZ
@given(data=any_bytes(corpus("json") + corpus("msgpack")), codec=st.sampled_from(["json", "msgpack"]))
def test_either_decoder_on_the_other_codecs_bytes(data: bytes, codec: s.Codec) -> None:
    _oracle(data, codec)


def _deep(depth: int, codec: str) -> bytes:
    """A message whose payload is ``depth`` levels of ``[{"k": ...}]`` around 1, crafted as bytes
    (the reference's encoder refuses more than 64 levels)."""
    msg = s.new_message(s.MessageType.EVENT, "a", "b", None)
    if codec == "json":
        text = encode(msg, "json")
        assert text.count(b'"payload":null') == 1
        return text.replace(b'"payload":null', b'"payload":' + b'[{"k":' * depth + b"1" + b"}]" * depth)
    packed = encode(msg, "msgpack")
    assert packed.endswith(b"\xc0\x80")  # ... payload nil, metadata {}
    return packed[:-2] + b"\x91\x81\xa1k" * depth + b"\x01" + b"\x80"


@pytest.mark.parametrize("codec", ["json", "msgpack"])
@pytest.mark.parametrize("depth", [16, 32, 100, 1_000, 100_000])
def test_deep_nesting_is_accepted_to_32_and_refused_typed_beyond(codec: s.Codec, depth: int) -> None:
    """ENV-014, ROB-004: 32 levels decode; deeper ones decode or are SERIALIZATION, never a crash
    (a RecursionError) or a hang, even 100,000 levels deep."""
    data = _deep(depth, codec)
    with watchdog():
        try:
            decode(data, codec)
        except ProtocolError as e:
            assert depth > 32
            assert e.code is ErrorCode.SERIALIZATION
            return
    assert depth <= 64


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_huge_metadata_is_bounded(codec: s.Codec) -> None:
    """ROB-004: 20,000 metadata keys, or one 1 MiB value, decode in bounded memory."""
    msg = s.new_message(s.MessageType.EVENT, "a", "b", None)
    wide = s.message_to_data(msg)
    wide["metadata"] = {f"k{i}": i for i in range(20_000)}
    big = s.message_to_data(msg)
    big["metadata"] = {"blob": "x" * (1 << 20)}
    for data_model in (wide, big):
        data = encode(s.message_from_data(data_model), codec)
        peak = peak_memory(lambda data=data: decode(data, codec))
        assert peak < 40 * len(data) + (4 << 20), f"{peak} bytes traced for {len(data)} bytes of input"


@settings(FUZZ, max_examples=max(30, FUZZ.max_examples // 20))
@given(data=any_bytes(corpus("json") + corpus("msgpack")), codec=st.sampled_from(["json", "msgpack"]))
def test_decoder_memory_is_bounded_by_the_input(data: bytes, codec: s.Codec) -> None:
    """ROB-004: whatever the bytes claim (a map of 2^32 entries, a 4 GiB string), the memory a
    decode takes is bounded by a small multiple of the input's length."""

    def run() -> None:
        with contextlib.suppress(ProtocolError):
            decode(data, codec)

    with watchdog():
        peak = peak_memory(run)
    assert peak < 64 * len(data) + (1 << 20), f"{peak} bytes traced for {len(data)} bytes of input"


@pytest.mark.parametrize(
    "data",
    [
        b"\xdf\xff\xff\xff\xff",  # a map of 2^32 - 1 entries, none there
        b"\xdd\xff\xff\xff\xff",  # an array of 2^32 - 1 items
        b"\x93\xdd\xff\xff\xff\xff",
        b"\xdb\xff\xff\xff\xff" + b"x" * 10,  # a 4 GiB string
        b"\xc6\xff\xff\xff\xff",  # 4 GiB of bin
        b"\xc9\xff\xff\xff\xff\xff",  # 4 GiB of ext
    ],
)
def test_msgpack_lengths_that_lie_allocate_nothing(data: bytes) -> None:
    """ROB-004: a MessagePack header announcing more than the input holds is a SERIALIZATION error
    found without allocating what it announces."""

    def run() -> None:
        with pytest.raises(ProtocolError) as info:
            decode(data, "msgpack")
        assert info.value.code is ErrorCode.SERIALIZATION

    assert peak_memory(run) < 1 << 20
