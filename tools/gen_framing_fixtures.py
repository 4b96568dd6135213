"""Generate fixtures/framing.json: golden vectors of spec/transport.md (framing and handshake).

Expected outcomes are written here by hand from the spec, not computed by the reference, so the
reference is checked against them (tests/transport/test_transport_sansio.py). Run
``python tools/gen_framing_fixtures.py``; ``--check`` exits 1 when the file is stale.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "framing.json"

V: list[dict[str, Any]] = []


def fr(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def js(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


HELLO = {"symphony": "1.0", "codecs": ["msgpack", "json"]}
A, B, C = b'{"a":1}', b"\x93\x01\x02\x03", b"hello, frames"


def frames(
    slug: str,
    desc: str,
    reqs: list[str],
    data: bytes,
    *,
    eof: bool = True,
    out: list[bytes] | None = None,
    state: str | None = None,
    error: str | None = None,
    mode: str | None = None,
    flags: tuple[str, ...] = (),
) -> None:
    inp: dict[str, Any] = {"hex": data.hex(), "eof": eof}
    if mode:
        inp["mode"] = mode
    v: dict[str, Any] = {
        "id": f"framing/{slug}",
        "description": desc,
        "requirements": reqs,
        "operation": "frames",
        "result": "invalid" if error else "valid",
    }
    if flags:
        v["flags"] = list(flags)
    v["input"] = inp
    if error:
        v["error"] = error
    else:
        v["expected"] = {"frames": [f.hex() for f in out or []], "state": state}
    V.append(v)


def handshake(
    slug: str,
    desc: str,
    reqs: list[str],
    role: str,
    data: bytes,
    *,
    eof: bool = False,
    config: dict[str, Any] | None = None,
    codec: str | None = None,
    mode: str | None = "frames",
    sent: list[Any] | None = None,
    out: list[bytes] | None = None,
    state: str = "open",
    error: str | None = None,
    flags: tuple[str, ...] = (),
) -> None:
    inp: dict[str, Any] = {"role": role, role: config or {}, "hex": data.hex(), "eof": eof}
    v: dict[str, Any] = {
        "id": f"handshake/{slug}",
        "description": desc,
        "requirements": reqs,
        "operation": "handshake",
        "result": "invalid" if error else "valid",
    }
    if flags:
        v["flags"] = list(flags)
    v["input"] = inp
    if error:
        v["error"] = error
    else:
        v["expected"] = {
            "codec": codec,
            "mode": mode,
            "sent": sent if sent is not None else [],
            "frames": [f.hex() for f in out or []],
            "state": state,
        }
    V.append(v)


def build() -> None:
    # ------------------------------------------------------------ frames: after the handshake
    frames(
        "single-frame",
        "one frame then end of stream at its boundary",
        ["FRM-001", "FRM-006"],
        fr(A),
        out=[A],
        state="clean-eof",
        flags=("golden",),
    )
    frames(
        "three-frames-one-read",
        "three frames arriving in one read",
        ["FRM-001", "FRM-005", "FRM-007"],
        fr(A) + fr(B) + fr(C),
        out=[A, B, C],
        state="clean-eof",
    )
    frames(
        "binary-payload",
        "every byte value in a payload is carried unchanged",
        ["FRM-001", "FRM-007"],
        fr(bytes(range(256))),
        out=[bytes(range(256))],
        state="clean-eof",
    )
    frames(
        "big-endian-300",
        "a 300-byte frame: the length is big-endian (little-endian would read 738 MB)",
        ["FRM-001"],
        fr(b"a" * 300),
        out=[b"a" * 300],
        state="clean-eof",
        flags=("boundary",),
    )
    frames(
        "three-byte-length-65537",
        "a 65,537-byte frame uses three bytes of the length",
        ["FRM-001"],
        fr(bytes(i % 251 for i in range(65537))),
        out=[bytes(i % 251 for i in range(65537))],
        state="clean-eof",
        flags=("boundary",),
    )
    frames(
        "keepalive-only",
        "a zero-length frame is a keep-alive, never delivered",
        ["FRM-004"],
        fr(b""),
        out=[],
        state="clean-eof",
    )
    frames(
        "keepalive-between-frames",
        "keep-alives between frames are dropped, frames kept in order",
        ["FRM-004", "FRM-007"],
        fr(A) + fr(b"") + fr(b"") + fr(B),
        out=[A, B],
        state="clean-eof",
    )
    frames(
        "empty-stream-eof",
        "end of stream before any byte is a clean close",
        ["FRM-006"],
        b"",
        out=[],
        state="clean-eof",
        flags=("boundary",),
    )
    frames(
        "empty-stream-open",
        "no bytes and no end of stream: still open",
        ["FRM-005"],
        b"",
        eof=False,
        out=[],
        state="open",
    )
    frames(
        "truncated-length-eof",
        "end of stream inside the length prefix is broken",
        ["FRM-006"],
        b"\x00\x00",
        out=[],
        state="broken",
    )
    frames(
        "truncated-keepalive-eof",
        "three zero bytes are half a keep-alive: broken",
        ["FRM-004", "FRM-006"],
        b"\x00\x00\x00",
        out=[],
        state="broken",
    )
    frames(
        "truncated-length-after-frame",
        "a complete frame stays delivered when the next one breaks",
        ["FRM-006", "FRM-007"],
        fr(A) + b"\x00\x00\x00",
        out=[A],
        state="broken",
    )
    frames(
        "truncated-payload-eof",
        "end of stream inside a payload: the partial frame is never delivered",
        ["FRM-006"],
        fr(A) + struct.pack(">I", 16) + b"abc",
        out=[A],
        state="broken",
    )
    frames(
        "length-only-eof",
        "end of stream right after a non-zero length is broken",
        ["FRM-006"],
        struct.pack(">I", 5),
        out=[],
        state="broken",
    )
    frames(
        "partial-frame-open",
        "a partial frame without end of stream waits for more bytes",
        ["FRM-005"],
        fr(A) + struct.pack(">I", 5) + b"ab",
        eof=False,
        out=[A],
        state="open",
    )
    frames(
        "max-length-accepted",
        "a length of exactly 16 MiB is accepted (the payload is still coming)",
        ["FRM-002", "FRM-003"],
        struct.pack(">I", 16 * 1024 * 1024) + b"x" * 10,
        eof=False,
        out=[],
        state="open",
        flags=("boundary",),
    )
    frames(
        "max-length-plus-one",
        "a length of 16 MiB + 1 is refused as soon as the 4 length bytes are in",
        ["FRM-003"],
        struct.pack(">I", 16 * 1024 * 1024 + 1),
        eof=False,
        error="MESSAGE_TOO_LARGE",
        flags=("boundary",),
    )
    frames(
        "length-all-ones",
        "a length of 2^32 - 1 is refused without waiting for 4 GiB",
        ["FRM-003"],
        b"\xff\xff\xff\xff",
        eof=False,
        error="MESSAGE_TOO_LARGE",
        flags=("nasty",),
    )
    frames(
        "oversize-after-frames",
        "an oversized length after good frames is refused",
        ["FRM-003"],
        fr(A) + fr(B) + struct.pack(">I", 0x02000000),
        eof=False,
        error="MESSAGE_TOO_LARGE",
    )
    frames(
        "oversize-then-eof",
        "a refused length is an error even when the stream ends right after",
        ["FRM-003", "FRM-006"],
        struct.pack(">I", 0x7FFFFFFF),
        eof=True,
        error="MESSAGE_TOO_LARGE",
    )
    frames(
        "http-garbage",
        "HTTP text read as a frame length is 1.2 GB: refused",
        ["FRM-003"],
        b"GET / HTTP/1.1\r\n",
        eof=False,
        error="MESSAGE_TOO_LARGE",
        flags=("nasty",),
    )
    # ------------------------------------------------------------ frames: NDJSON
    frames(
        "ndjson-two-lines",
        "NDJSON: two lines are two frames",
        ["FRM-021"],
        b'{"a":1}\n{"b":2}\n',
        mode="ndjson",
        out=[b'{"a":1}', b'{"b":2}'],
        state="clean-eof",
    )
    frames(
        "ndjson-empty-line-keepalive",
        "NDJSON: an empty line is a keep-alive",
        ["FRM-021", "FRM-004"],
        b'{"a":1}\n\n\n{"b":2}\n',
        mode="ndjson",
        out=[b'{"a":1}', b'{"b":2}'],
        state="clean-eof",
    )
    frames(
        "ndjson-partial-line-eof",
        "NDJSON: end of stream inside a line is broken",
        ["FRM-022"],
        b'{"a":1}\n{"b"',
        mode="ndjson",
        out=[b'{"a":1}'],
        state="broken",
    )
    frames(
        "ndjson-partial-line-open",
        "NDJSON: a line without its LF waits",
        ["FRM-021", "FRM-005"],
        b'{"a":1}\n{"b"',
        eof=False,
        mode="ndjson",
        out=[b'{"a":1}'],
        state="open",
    )
    frames(
        "ndjson-crlf",
        "NDJSON: only LF ends a line; a CR before it belongs to the text",
        ["FRM-021"],
        b'{"a":1}\r\n',
        mode="ndjson",
        out=[b'{"a":1}\r'],
        state="clean-eof",
        flags=("nasty",),
    )

    # ------------------------------------------------------------ handshake: server side
    srv = {"version": {"major": 1, "minor": 0}, "codecs": ["json", "msgpack"]}

    def welcome(codec: str) -> dict[str, Any]:
        return {"symphony": "1.0", "codec": codec}

    handshake(
        "server-msgpack",
        "the client's preferred codec wins",
        ["FRM-010", "FRM-011"],
        "server",
        fr(js(HELLO)),
        config=srv,
        codec="msgpack",
        sent=[welcome("msgpack")],
        flags=("golden",),
    )
    handshake(
        "server-client-order-wins",
        "the first codec of the client's list the server supports",
        ["FRM-011"],
        "server",
        fr(js({"symphony": "1.0", "codecs": ["json", "msgpack"]})),
        config={"codecs": ["msgpack", "json"]},
        codec="json",
        sent=[welcome("json")],
    )
    handshake(
        "server-skips-unknown-codec",
        "unknown codec names in the hello are skipped",
        ["FRM-011"],
        "server",
        fr(js({"symphony": "1.0", "codecs": ["cbor", "json"]})),
        config=srv,
        codec="json",
        sent=[welcome("json")],
    )
    handshake(
        "server-hello-then-frames",
        "frames after the hello in the same read are delivered",
        ["FRM-015", "FRM-005", "FRM-004"],
        "server",
        fr(js({"symphony": "1.0", "codecs": ["json"]})) + fr(A) + fr(b"") + fr(C),
        config=srv,
        codec="json",
        sent=[welcome("json")],
        out=[A, C],
    )
    handshake(
        "server-higher-minor",
        "a hello with the same major and a higher minor is accepted",
        ["FRM-012"],
        "server",
        fr(js({"symphony": "1.7", "codecs": ["json"]})),
        config=srv,
        codec="json",
        sent=[welcome("json")],
    )
    handshake(
        "server-unknown-members",
        "members of the hello the server does not know are ignored",
        ["FRM-010"],
        "server",
        fr(js({"symphony": "1.0", "codecs": ["json"], "client": "x", "n": [1]})),
        config=srv,
        codec="json",
        sent=[welcome("json")],
    )
    handshake(
        "server-hello-4096-pending",
        "a hello length of exactly 4096 is accepted and awaited",
        ["FRM-010", "FRM-013"],
        "server",
        struct.pack(">I", 4096) + b'{"symphony"',
        config=srv,
        codec=None,
        mode="frames",
        state="handshaking",
        flags=("boundary",),
    )
    handshake(
        "server-truncated-hello-eof",
        "end of stream inside the hello is broken, nothing answered",
        ["FRM-006"],
        "server",
        fr(js(HELLO))[:-3],
        eof=True,
        config=srv,
        codec=None,
        state="broken",
    )
    handshake(
        "server-eof-before-hello",
        "a client that leaves before any byte is a clean close",
        ["FRM-006"],
        "server",
        b"",
        eof=True,
        config=srv,
        codec=None,
        mode=None,
        state="clean-eof",
    )
    handshake(
        "server-major-2",
        "a hello of major 2 is refused with INVALID_PROTOCOL_VERSION",
        ["FRM-012"],
        "server",
        fr(js({"symphony": "2.0", "codecs": ["json"]})),
        config=srv,
        error="INVALID_PROTOCOL_VERSION",
    )
    handshake(
        "server-major-0",
        "a hello of major 0 is refused with INVALID_PROTOCOL_VERSION",
        ["FRM-012"],
        "server",
        fr(js({"symphony": "0.9", "codecs": ["json"]})),
        config=srv,
        error="INVALID_PROTOCOL_VERSION",
    )
    handshake(
        "server-version-before-codec",
        "version is checked before codecs: major 2 with no common codec",
        ["FRM-014", "FRM-012"],
        "server",
        fr(js({"symphony": "2.0", "codecs": ["cbor"]})),
        config=srv,
        error="INVALID_PROTOCOL_VERSION",
        flags=("multiple-faults",),
    )
    handshake(
        "server-http-garbage",
        "HTTP text before the handshake: error frame, close",
        ["FRM-013", "FRM-020"],
        "server",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        config=srv,
        error="SERIALIZATION",
        flags=("nasty",),
    )
    handshake(
        "server-binary-garbage",
        "a first byte that is neither 0x00 nor '{'",
        ["FRM-013", "FRM-020"],
        "server",
        b"\x93\x01\x02",
        config=srv,
        error="SERIALIZATION",
        flags=("nasty",),
    )
    handshake(
        "server-empty-first-frame",
        "a zero-length first frame is no hello",
        ["FRM-013"],
        "server",
        fr(b""),
        config=srv,
        error="SERIALIZATION",
    )
    handshake(
        "server-hello-length-4097",
        "a hello length over 4096 is refused at once",
        ["FRM-013"],
        "server",
        struct.pack(">I", 4097),
        config=srv,
        error="SERIALIZATION",
        flags=("boundary",),
    )
    handshake(
        "server-hello-length-16m",
        "a hello length of 16 MiB is refused at once, no waiting",
        ["FRM-013"],
        "server",
        struct.pack(">I", 16 * 1024 * 1024),
        config=srv,
        error="SERIALIZATION",
    )
    handshake(
        "server-not-json",
        "a first frame that is not JSON",
        ["FRM-013"],
        "server",
        fr(b"hello"),
        config=srv,
        error="SERIALIZATION",
    )
    handshake(
        "server-json-array",
        "a first frame that is a JSON array, not an object",
        ["FRM-013"],
        "server",
        fr(b'["symphony","1.0"]'),
        config=srv,
        error="SERIALIZATION",
    )
    handshake(
        "server-invalid-utf8",
        "a hello that is not valid UTF-8",
        ["FRM-013"],
        "server",
        fr(b'{"symphony":"1.0","codecs":["json"],"x":"\xff"}'),
        config=srv,
        error="SERIALIZATION",
    )
    handshake(
        "server-missing-symphony",
        "a hello without 'symphony'",
        ["FRM-013"],
        "server",
        fr(js({"codecs": ["json"]})),
        config=srv,
        error="SERIALIZATION",
    )
    handshake(
        "server-missing-codecs",
        "a hello without 'codecs'",
        ["FRM-013"],
        "server",
        fr(js({"symphony": "1.0"})),
        config=srv,
        error="SERIALIZATION",
    )
    handshake(
        "server-empty-codecs",
        "a hello with an empty codec list",
        ["FRM-013"],
        "server",
        fr(js({"symphony": "1.0", "codecs": []})),
        config=srv,
        error="SERIALIZATION",
    )
    handshake(
        "server-codec-not-string",
        "a codec name that is not a string",
        ["FRM-013"],
        "server",
        fr(js({"symphony": "1.0", "codecs": [1]})),
        config=srv,
        error="SERIALIZATION",
    )
    handshake(
        "server-no-common-codec",
        "no codec in common",
        ["FRM-013"],
        "server",
        fr(js({"symphony": "1.0", "codecs": ["cbor", "bson"]})),
        config=srv,
        error="SERIALIZATION",
    )
    handshake(
        "server-version-not-dotted",
        "'symphony' must be MAJOR.MINOR",
        ["FRM-013"],
        "server",
        fr(js({"symphony": "1", "codecs": ["json"]})),
        config=srv,
        error="SERIALIZATION",
    )
    handshake(
        "server-version-leading-zero",
        "no leading zeros in the version",
        ["FRM-013"],
        "server",
        fr(js({"symphony": "01.0", "codecs": ["json"]})),
        config=srv,
        error="SERIALIZATION",
    )
    handshake(
        "server-version-not-string",
        "'symphony' is a string, not an object",
        ["FRM-013"],
        "server",
        fr(js({"symphony": {"major": 1, "minor": 0}, "codecs": ["json"]})),
        config=srv,
        error="SERIALIZATION",
    )
    handshake(
        "server-version-over-u16",
        "a version part over 65535",
        ["FRM-013"],
        "server",
        fr(js({"symphony": "1.65536", "codecs": ["json"]})),
        config=srv,
        error="SERIALIZATION",
    )
    # NDJSON, detected by the first byte
    nd_hello = js({"symphony": "1.0", "codecs": ["json"]}) + b"\n"
    handshake(
        "server-ndjson-hello",
        "a first byte '{' selects NDJSON; the welcome is a line",
        ["FRM-020", "FRM-021"],
        "server",
        nd_hello,
        config=srv,
        codec="json",
        mode="ndjson",
        sent=[welcome("json")],
    )
    handshake(
        "server-ndjson-then-lines",
        "NDJSON lines after the hello, an empty line a keep-alive",
        ["FRM-021", "FRM-004"],
        "server",
        nd_hello + b'{"a":1}\n\n{"b":2}\n',
        eof=True,
        config=srv,
        codec="json",
        mode="ndjson",
        sent=[welcome("json")],
        out=[b'{"a":1}', b'{"b":2}'],
        state="clean-eof",
    )
    handshake(
        "server-ndjson-json-forced",
        "NDJSON carries only json, even when msgpack is preferred",
        ["FRM-021"],
        "server",
        js(HELLO) + b"\n",
        config=srv,
        codec="json",
        mode="ndjson",
        sent=[welcome("json")],
    )
    handshake(
        "server-ndjson-msgpack-only",
        "NDJSON with only msgpack offered: no codec in common",
        ["FRM-021", "FRM-013"],
        "server",
        js({"symphony": "1.0", "codecs": ["msgpack"]}) + b"\n",
        config=srv,
        error="SERIALIZATION",
    )
    handshake(
        "server-ndjson-major-2",
        "NDJSON hello of major 2",
        ["FRM-012", "FRM-021"],
        "server",
        js({"symphony": "2.1", "codecs": ["json"]}) + b"\n",
        config=srv,
        error="INVALID_PROTOCOL_VERSION",
    )
    handshake(
        "server-ndjson-hello-too-long",
        "an NDJSON hello line over 4096 bytes is refused at once",
        ["FRM-022", "FRM-013"],
        "server",
        b"{" + b" " * 4100,
        config=srv,
        error="SERIALIZATION",
        flags=("boundary",),
    )
    handshake(
        "server-leading-space",
        "a first byte ' ' is neither mode",
        ["FRM-020"],
        "server",
        b" " + nd_hello,
        config=srv,
        error="SERIALIZATION",
    )

    # ------------------------------------------------------------ handshake: client side
    cli = {"version": {"major": 1, "minor": 0}, "codecs": ["msgpack", "json"]}
    handshake(
        "client-welcome",
        "the client sends its hello and takes the server's codec",
        ["FRM-010", "FRM-011"],
        "client",
        fr(js(welcome("msgpack"))),
        config=cli,
        codec="msgpack",
        sent=[HELLO],
        flags=("golden",),
    )
    handshake(
        "client-welcome-then-frames",
        "frames after the welcome, keep-alive dropped",
        ["FRM-011", "FRM-004", "FRM-007"],
        "client",
        fr(js(welcome("json"))) + fr(A) + fr(b"") + fr(B),
        eof=True,
        config=cli,
        codec="json",
        sent=[HELLO],
        out=[A, B],
        state="clean-eof",
    )
    handshake(
        "client-welcome-higher-minor",
        "a welcome of 1.3 is compatible",
        ["FRM-016"],
        "client",
        fr(js({"symphony": "1.3", "codec": "json"})),
        config=cli,
        codec="json",
        sent=[HELLO],
    )
    handshake(
        "client-eof-before-welcome",
        "the server leaves without answering: clean close, no codec",
        ["FRM-006"],
        "client",
        b"",
        eof=True,
        config=cli,
        codec=None,
        sent=[HELLO],
        state="clean-eof",
    )
    handshake(
        "client-welcome-major-2",
        "a welcome of major 2 is refused",
        ["FRM-016"],
        "client",
        fr(js({"symphony": "2.0", "codec": "json"})),
        config=cli,
        error="INVALID_PROTOCOL_VERSION",
    )
    handshake(
        "client-error-frame-version",
        "the server's error frame code is reported",
        ["FRM-016", "FRM-014"],
        "client",
        fr(
            js(
                {
                    "error": {
                        "code": "INVALID_PROTOCOL_VERSION",
                        "category": "version",
                        "recoverable": False,
                        "message": "server speaks 2.0",
                        "details": {"major": 1, "minor": 0},
                    }
                }
            )
        ),
        eof=True,
        config=cli,
        error="INVALID_PROTOCOL_VERSION",
    )
    handshake(
        "client-error-frame-serialization",
        "an error frame with SERIALIZATION",
        ["FRM-016"],
        "client",
        fr(
            js(
                {
                    "error": {
                        "code": "SERIALIZATION",
                        "category": "serialization",
                        "recoverable": True,
                        "message": "no codec in common",
                    }
                }
            )
        ),
        eof=True,
        config=cli,
        error="SERIALIZATION",
    )
    handshake(
        "client-codec-not-offered",
        "a welcome naming a codec the client did not offer",
        ["FRM-016"],
        "client",
        fr(js(welcome("json"))),
        config={"codecs": ["msgpack"]},
        error="SERIALIZATION",
    )
    handshake(
        "client-welcome-garbage",
        "an answer that is not JSON",
        ["FRM-016"],
        "client",
        fr(B),
        config=cli,
        error="SERIALIZATION",
        flags=("nasty",),
    )
    handshake(
        "client-welcome-too-long",
        "an answer length over 4096 is refused at once",
        ["FRM-016"],
        "client",
        struct.pack(">I", 1 << 20),
        config=cli,
        error="SERIALIZATION",
    )
    handshake(
        "client-keepalive-before-welcome",
        "a keep-alive is not a welcome",
        ["FRM-016"],
        "client",
        fr(b"") + fr(js(welcome("json"))),
        config=cli,
        error="SERIALIZATION",
    )
    handshake(
        "client-ndjson",
        "an NDJSON client: hello and welcome are lines",
        ["FRM-021", "FRM-023"],
        "client",
        js(welcome("json")) + b"\n" + b'{"a":1}\n',
        eof=True,
        config={"codecs": ["json"], "mode": "ndjson"},
        codec="json",
        mode="ndjson",
        sent=[{"symphony": "1.0", "codecs": ["json"]}],
        out=[b'{"a":1}'],
        state="clean-eof",
    )


def render() -> str:
    V.clear()
    build()
    doc = {
        "$schema": "../spec/vectors.schema.json",
        "area": "framing",
        "description": "Framing and handshake of spec/transport.md: operations `frames` (a decoder after the "
        "handshake) and `handshake` (one side of a connection fed the peer's bytes); see "
        "docs/vectors-format.md. Generated by tools/gen_framing_fixtures.py.",
        "vectors": V,
    }
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print("fixtures/framing.json is stale: run python tools/gen_framing_fixtures.py")
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({len(V)} vectors)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
