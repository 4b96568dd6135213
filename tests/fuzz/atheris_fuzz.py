"""Coverage-guided fuzzing with atheris (opt-in: ``tox -e atheris``; not collected by pytest).

One target covers the two decoders and the sans-I/O core in both roles: any input must end in a
message, a typed :class:`symphony_ipc.ProtocolError` or protocol events; anything else is a crash
that atheris reports with the input that caused it (spec/security.md ROB-004, ROB-005).

    python tests/fuzz/atheris_fuzz.py -atheris_runs=200000 [corpus_dir]
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    import symphony_ipc
    from symphony_ipc.transport import sansio


def test_one_input(data: bytes) -> None:
    for codec in ("json", "msgpack"):
        with contextlib.suppress(symphony_ipc.ProtocolError):
            symphony_ipc.decode(data, codec)
    server = sansio.Connection(sansio.Role.SERVER)
    server.receive_data(data)
    server.receive_eof()
    server.data_to_send()
    client = sansio.Connection(sansio.Role.CLIENT, codecs=("json",))
    client.initiate()
    client.receive_data(data)
    client.receive_eof()


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
