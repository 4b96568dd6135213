"""Differential tests against the bundled reference: what the implementation encodes, the
reference decodes to the same message, and what the reference encodes, the implementation
decodes to the same message (for each codec the implementation declares)."""

from __future__ import annotations

import pytest

from .. import strategies as sst
from .._case import SuiteCase
from .._impl import ImplError, MessageData
from ._support import case, expect_ok, expect_same_message, fail


@pytest.mark.parametrize(
    "codec",
    [case("json", reqs=("COD-001",), codec="json"), case("msgpack", reqs=("COD-101",), codec="msgpack")],
)
def test_reference_decodes_what_impl_encodes(symphony_case: SuiteCase, codec: str) -> None:
    impl, ref = symphony_case.impl, symphony_case.reference

    def check(message: MessageData) -> None:
        encoded = expect_ok(f"encoding ({codec})", lambda: impl.encode(codec, message))
        try:
            decoded = ref.decode(codec, encoded)
        except ImplError as e:
            fail(f"the reference rejects the implementation's {codec} encoding with {e.code} ({e.message})")
        expect_same_message(f"the reference decoding the implementation's {codec} encoding", message, decoded)
        if codec == "msgpack":
            canonical = ref.encode(codec, message)
            if encoded != canonical:
                fail(
                    "the MessagePack encoding is not the canonical layout (smallest forms):\n"
                    f"  reference      {canonical.hex()}\n  implementation {encoded.hex()}"
                )

    symphony_case.check_property(check, sst.messages())


@pytest.mark.parametrize(
    "codec",
    [case("json", reqs=("COD-002",), codec="json"), case("msgpack", reqs=("COD-103",), codec="msgpack")],
)
def test_impl_decodes_what_reference_encodes(symphony_case: SuiteCase, codec: str) -> None:
    impl, ref = symphony_case.impl, symphony_case.reference

    def check(message: MessageData) -> None:
        encoded = ref.encode(codec, message)
        decoded = expect_ok(f"decoding the reference's {codec} encoding", lambda: impl.decode(codec, encoded))
        expect_same_message(f"decoding the reference's {codec} encoding", message, decoded)

    symphony_case.check_property(check, sst.messages())
