"""Per-sender rate limits on an injected clock, the RATE_LIMITED answer, and ``symphony-ipc
serve``'s security options (spec/security.md ROB-007, SEC-008)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest

import symphony_ipc as s
from symphony_ipc.security import RateLimit, RateLimiter, TokenBucket, rate_limited_reply


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_burst_then_rate() -> None:
    clock = FakeClock()
    b = TokenBucket(rate=8, burst=3, clock=clock)  # steps of 1/16 s: exact in binary
    assert [b.take() for _ in range(4)] == [True, True, True, False]
    assert b.retry_after() == 0.125
    clock.now += 0.0625
    assert not b.take()
    clock.now += 0.0625
    assert b.take()
    clock.now += 100  # refills to the burst, not beyond
    assert [b.take() for _ in range(4)] == [True, True, True, False]


def test_token_bucket_ignores_a_clock_going_backwards() -> None:
    clock = FakeClock()
    b = TokenBucket(rate=1, burst=1, clock=clock)
    assert b.take()
    clock.now -= 50
    assert not b.take()
    clock.now += 50.5  # half a second after the last believed instant: half a token
    assert not b.take()
    clock.now += 0.5
    assert b.take()


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (float("inf"), 1), (1, 0.5), (1, float("nan"))])
def test_token_bucket_rejects_nonsense(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match=r"rate|burst"):
        TokenBucket(rate, burst)


def test_rate_limiter_is_per_sender_and_bounded() -> None:
    clock = FakeClock()
    lim = RateLimiter(RateLimit(rate=1, burst=2), clock, max_senders=3)
    assert lim.check("a") is None
    assert lim.check("a") is None
    assert lim.check("a") == pytest.approx(1.0)
    assert lim.check("b") is None  # another sender: its own bucket
    for k in range(10):  # many senders: idle, full buckets are forgotten
        clock.now += 10
        lim.check(f"s{k}")
    assert len(lim) <= 4
    assert (lim.allowed, lim.limited) == (13, 1)


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_rate_limited_reply_is_an_error_message_about_the_refused_one(codec: s.Codec) -> None:
    msg = s.new_message(s.MessageType.REQUEST, "client-7", "svc", {"x": 1})
    reply = s.decode(rate_limited_reply(s.encode(msg, codec), codec, 0.25), codec)
    assert reply.header.message_type is s.MessageType.ERROR
    assert reply.header.source == "bus:system"
    assert reply.header.target == "client-7"
    assert reply.header.correlation_id == msg.header.id
    assert reply.payload == {
        "code": "RATE_LIMITED",
        "category": "resource",
        "recoverable": True,
        "message": "rate limit exceeded: retry in 250 ms",
        "details": {"retry_after_ms": 250},
    }
    garbage = s.decode(rate_limited_reply(b"\xff not a message", codec, 0.0001), codec)
    assert garbage.header.correlation_id is None
    assert garbage.header.target == "bus:unknown"
    assert garbage.payload["details"] == {"retry_after_ms": 1}


@pytest.fixture
def sdir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="sy-r-", dir="/tmp")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _echo_flag() -> list[str]:
    """``--echo`` when ``serve`` has it (once ``serve`` is a bus node, the echo is an option)."""
    out = subprocess.run(
        [sys.executable, "-m", "symphony_ipc.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return ["--echo"] if "--echo" in out.stdout else []


def _serve(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "symphony_ipc.cli", "serve", *args, *_echo_flag()], stderr=subprocess.PIPE
    )


def _wait_for(path: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while not os.path.exists(path):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_serve_rate_limit_and_stats_line(sdir: str) -> None:
    """ROB-007, SEC-008 end to end: ``serve --rate 5 --burst 2``: a burst of 6 gets 2 echoes and 4
    RATE_LIMITED; ``--allow-uid`` of another user refuses us; the exit line counts the refusals."""
    path = f"{sdir}/s.sock"
    proc = _serve(
        "--listen",
        f"unix:{path}",
        "--rate",
        "5",
        "--burst",
        "2",
        "--allow-uid",
        "0",
        "--allow-uid",
        str(os.geteuid()),
    )
    try:
        _wait_for(path, proc)

        async def body() -> list[str]:
            from symphony_ipc.transport import connect

            kinds = []
            async with await connect(f"unix:{path}", codecs=("json",)) as c:
                msgs = [s.new_message(s.MessageType.REQUEST, "me", "echo", i) for i in range(6)]
                for m in msgs:
                    await c.send_frame(s.encode(m, "json"))
                for m in msgs:
                    r = s.decode(await c.recv_frame(5), "json")
                    if r.header.id == m.header.id:
                        kinds.append("echo")
                    else:
                        assert r.header.correlation_id == m.header.id
                        kinds.append(r.payload["code"])
            return kinds

        kinds = asyncio.run(body())
        assert kinds[:2] == ["echo", "echo"]
        assert kinds.count("RATE_LIMITED") >= 3
    finally:
        proc.terminate()
        proc.wait(10)
    proc2 = _serve("--listen", f"unix:{path}", "--allow-uid", str(os.geteuid() + 1))
    try:
        _wait_for(path, proc2)

        async def refused() -> str:
            from symphony_ipc.transport import HandshakeFailed, connect

            try:
                await connect(f"unix:{path}")
            except HandshakeFailed as e:
                return e.code.value
            return "accepted"

        assert asyncio.run(refused()) == "PEER_NOT_ALLOWED"
    finally:
        proc2.terminate()
        _, err = proc2.communicate(timeout=10)
    assert b"'refused_peer': 1" in err, err


def test_serve_refuses_bad_security_options(sdir: str) -> None:
    secret = f"{sdir}/secret"
    with open(secret, "w") as f:
        f.write("0123456789abcdef0123")
    os.chmod(secret, 0o644)
    for args, text in (
        (["--secret-file", secret], b"owner only"),
        (["--burst", "3"], b"--burst needs --rate"),
        (["--socket-mode", "999"], b"octal"),
    ):
        out = subprocess.run(
            [sys.executable, "-m", "symphony_ipc.cli", "serve", "--listen", f"unix:{sdir}/x.sock", *args],
            capture_output=True,
            timeout=30,
        )
        assert out.returncode == 2, (args, out)
        assert text in out.stderr, (args, out.stderr)
    os.chmod(sdir, 0o777)
    out = subprocess.run(
        [sys.executable, "-m", "symphony_ipc.cli", "serve", "--listen", f"unix:{sdir}/x.sock"],
        capture_output=True,
        timeout=30,
    )
    assert out.returncode == 2
    assert b"without the sticky bit" in out.stderr


def test_ping_with_a_secret_through_serve(sdir: str) -> None:
    """SEC-007 end to end: serve and ping share a secret file."""
    secret = f"{sdir}/secret"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, os.urandom(24).hex().encode())
    os.close(fd)
    path = f"{sdir}/s.sock"
    proc = _serve("--listen", f"unix:{path}", "--secret-file", secret)
    try:
        _wait_for(path, proc)
        ok = subprocess.run(
            [
                sys.executable,
                "-m",
                "symphony_ipc.cli",
                "ping",
                f"unix:{path}",
                "-n",
                "20",
                "--secret-file",
                secret,
            ],
            capture_output=True,
            timeout=60,
        )
        assert ok.returncode == 0, ok.stderr
        assert b"io=asyncio" in ok.stdout
        without = subprocess.run(
            [sys.executable, "-m", "symphony_ipc.cli", "ping", f"unix:{path}", "-n", "1"],
            capture_output=True,
            timeout=60,
        )
        assert without.returncode == 2
        assert b"PEER_NOT_ALLOWED" in without.stderr
    finally:
        proc.terminate()
        proc.wait(10)
