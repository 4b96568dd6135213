"""Echo servers run as child processes by perf/bench_transport.py (standard library, plus pyzmq).

    python perf/_children.py floor unix PATH        # blocking socket echo; prints "ready"
    python perf/_children.py floor fifo C2S S2C     # blocking FIFO-pair echo
    python perf/_children.py floor stdio            # blocking stdin -> stdout echo
    python perf/_children.py mpconn PATH            # multiprocessing.connection echo; prints "ready"
    python perf/_children.py zmq ENDPOINT           # pyzmq REP echo; prints "ready"

Each echoes what it receives until its peer goes away. Nothing of symphony_ipc is imported: a floor
must contain nothing of ours, and a peer only its own library.
"""

from __future__ import annotations

import os
import socket
import sys

BUF = 1 << 16


def _ready() -> None:
    sys.stdout.write("ready\n")
    sys.stdout.flush()


def _echo_fds(rfd: int, wfd: int) -> None:
    buf = bytearray(BUF)
    view = memoryview(buf)
    with open(rfd, "rb", buffering=0, closefd=False) as r:
        while True:
            n = r.readinto(buf)
            if not n:
                return
            out = view[:n]
            while out:
                out = out[os.write(wfd, out) :]


def floor_unix(path: str) -> None:
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(path)
    ls.listen(1)
    _ready()
    conn, _ = ls.accept()
    ls.close()
    buf = bytearray(BUF)
    view = memoryview(buf)
    with conn:
        while True:
            n = conn.recv_into(buf)
            if not n:
                return
            conn.sendall(view[:n])


def floor_fifo(c2s: str, s2c: str) -> None:
    rfd = os.open(c2s, os.O_RDONLY)
    wfd = os.open(s2c, os.O_WRONLY)
    _echo_fds(rfd, wfd)


def mpconn(path: str) -> None:
    from multiprocessing.connection import Listener

    with Listener(path, family="AF_UNIX") as listener:
        _ready()
        with listener.accept() as conn:
            try:
                while True:
                    conn.send_bytes(conn.recv_bytes())
            except EOFError:
                return


def zmq_rep(endpoint: str) -> None:
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.REP)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(endpoint)
    _ready()
    try:
        while True:
            msg = sock.recv(copy=False)
            if msg.bytes == b"":  # the client's goodbye
                sock.send(b"")
                return
            sock.send(msg, copy=False)
    finally:
        sock.close()
        ctx.term()


def main(argv: list[str]) -> int:
    match argv:
        case ["floor", "unix", path]:
            floor_unix(path)
        case ["floor", "fifo", c2s, s2c]:
            floor_fifo(c2s, s2c)
        case ["floor", "stdio"]:
            _echo_fds(0, 1)
        case ["mpconn", path]:
            mpconn(path)
        case ["zmq", endpoint]:
            zmq_rep(endpoint)
        case _:
            print(__doc__, file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
