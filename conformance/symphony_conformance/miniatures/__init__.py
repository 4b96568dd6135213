"""Miniature drivers that misbehave on purpose, to test the harness itself.

Run one as ``python -m symphony_conformance.miniatures MODE [ARG]``. Each is the reference
implementation behind the driver protocol (``symphony_ipc._driver.Driver``) with one fault
injected; "request" counts the requests after ``hello`` in the current process.

| mode | fault |
|---|---|
| ``honest`` | none (the baseline) |
| ``wrong-data`` | every successful decode answers a message whose payload is ``"wrong"`` |
| ``wrong-seq`` | every answer after the handshake carries ``seq + 1`` |
| ``hang N`` | stops reading stdin before request N (default 1): it is never answered |
| ``crash N`` | answers N requests (default 1), then exits with status 3 on the next |
| ``garbage`` | answers every request after the handshake with a line that is not JSON |
| ``garbage-hello`` | answers the handshake with a line that is not JSON |
| ``schema-invalid`` | encode answers without ``data_b64``; decode answers a string for the message |
| ``liar`` | declares ``codec-msgpack`` but skips msgpack decode and errors on msgpack encode |
| ``unknown-capability`` | declares a profile ``telepathy`` |
| ``inconsistent-capabilities`` | declares codec ``msgpack`` without the profile ``codec-msgpack`` |
| ``protocol-mismatch`` | answers the handshake with ``driver_protocol`` 2 |
| ``refuse-hello`` | answers the handshake with ``errored`` |
| ``slow-start S`` | sleeps S seconds (default 1) before reading anything |
| ``deaf`` | never reads stdin nor answers |
| ``exit-at-start`` | writes a line to stderr and exits with status 1 at once |
| ``stubborn`` | ignores SIGTERM, ``shutdown`` and end of input: only SIGKILL stops it |
| ``noisy`` | writes 200 lines to stderr before each answer |

A miniature that sleeps "forever" exits by itself after a minute, so a harness bug cannot leak a
process for long.
"""

from __future__ import annotations

MODES: tuple[str, ...] = (
    "honest",
    "wrong-data",
    "wrong-seq",
    "hang",
    "crash",
    "garbage",
    "garbage-hello",
    "schema-invalid",
    "liar",
    "unknown-capability",
    "inconsistent-capabilities",
    "protocol-mismatch",
    "refuse-hello",
    "slow-start",
    "deaf",
    "exit-at-start",
    "stubborn",
    "noisy",
)


def command(mode: str, *args: object) -> list[str]:
    """The argv that runs miniature ``mode`` with the current interpreter."""
    import sys

    if mode not in MODES:
        raise ValueError(f"unknown miniature {mode!r}; one of {MODES}")
    return [sys.executable, "-m", "symphony_conformance.miniatures", mode, *(str(a) for a in args)]
