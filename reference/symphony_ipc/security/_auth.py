"""The shared-secret handshake (spec/security.md section 2, SEC-007): HMAC-SHA256 challenge and
response in both directions, before the hello, for transports without peer credentials.

:class:`SecretHandshake` is the sans-I/O state machine (bytes in, bytes out); :class:`AuthenticatedPipe`
runs it over any :class:`~symphony_ipc.transport.Pipe` and then gets out of the way: the connection
above it (handshake, framing) never sees the exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Callable
from typing import Any, Final

from .._errors import ErrorCode
from ..transport._base import Pipe, PipeSink
from ..transport._errors import TransportError
from ..transport.sansio import MAX_HELLO_SIZE, Role, frame_bytes, make_error
from ._policy import REFUSAL_DISCARD, REFUSAL_LINGER

SCHEME: Final = "hmac-sha256"
LABEL_SERVER: Final = b"symphony-auth-v1 server"
LABEL_CLIENT: Final = b"symphony-auth-v1 client"
NONCE_BYTES: Final = 32
MIN_SECRET: Final = 16
_LOWER_HEX: Final = re.compile(r"[0-9a-f]*")


def proof(secret: bytes, label: bytes, client_nonce: bytes, server_nonce: bytes) -> bytes:
    """``HMAC-SHA256(secret, label || NC || NS)``."""
    return hmac.new(secret, label + client_nonce + server_nonce, hashlib.sha256).digest()


def read_secret_file(path: str) -> bytes:
    """The secret in ``path`` (surrounding whitespace stripped); refused when the file is readable by
    group or others, or the secret is shorter than 16 bytes (spec/security.md section 2)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if st.st_mode & 0o077:
            raise PermissionError(
                f"{path}: a secret file must be readable by its owner only (mode {st.st_mode & 0o777:04o})"
            )
        with os.fdopen(os.dup(fd), "rb") as f:
            secret = f.read(1 << 16).strip()
    finally:
        os.close(fd)
    if len(secret) < MIN_SECRET:
        raise ValueError(f"{path}: a shared secret has at least {MIN_SECRET} bytes")
    return secret


class AuthError(Exception):
    """The secret handshake failed (reported as PEER_NOT_ALLOWED)."""


def _frame_json(obj: dict[str, Any]) -> bytes:
    return frame_bytes(json.dumps(obj, separators=(",", ":")).encode())


def _hex(obj: dict[str, Any], key: str, size: int) -> bytes:
    """``obj[key]``: exactly ``size`` bytes in lower-case hex, the only spelling of section 2 (a
    fuzzed proof in upper case was taken for the right one: same bytes, another spelling)."""
    value = obj.get(key)
    if not isinstance(value, str) or len(value) != 2 * size or not _LOWER_HEX.fullmatch(value):
        raise AuthError(f"{key!r} must be {size} bytes in lower-case hex")
    return bytes.fromhex(value)


class SecretHandshake:
    """One side of the exchange. Feed :meth:`receive_data`; write :meth:`data_to_send`; once
    :attr:`done`, :attr:`leftover` holds the bytes that followed (the hello). On failure
    :attr:`error` says why and, on a server, :meth:`data_to_send` holds the error frame; a client that
    receives the server's error frame keeps it in :attr:`remote_error` (to pass on unchanged)."""

    def __init__(self, role: Role, secret: bytes, *, nonce: bytes | None = None) -> None:
        if len(secret) < MIN_SECRET:
            raise ValueError(f"a shared secret has at least {MIN_SECRET} bytes")
        self.role = role
        self._secret = secret
        self._nonce = nonce if nonce is not None else secrets.token_bytes(NONCE_BYTES)
        self._peer_nonce = b""
        self._buf = bytearray()
        self._out = bytearray()
        self._step = 0
        self.done = False
        self.error: str | None = None
        self.remote_error: bytes | None = None
        self.leftover = b""

    @property
    def failed(self) -> bool:
        return self.error is not None

    def initiate(self) -> bytes:
        """Client: the first frame."""
        if self.role is not Role.CLIENT:
            raise ValueError("only a client starts the secret handshake")
        return _frame_json({"auth": SCHEME, "nonce": self._nonce.hex()})

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        if self.done or self.failed:
            return
        buf = self._buf
        buf += data
        try:
            while not self.done and not self.failed:
                if len(buf) < 4:
                    return
                n = int.from_bytes(buf[:4], "big")
                if not 0 < n <= MAX_HELLO_SIZE:  # checked on the length alone (ROB-001)
                    raise AuthError(f"a frame length of {n} is no auth frame")
                if len(buf) < 4 + n:
                    return
                payload = bytes(buf[4 : 4 + n])
                del buf[: 4 + n]
                self._frame(payload)
        except AuthError as e:
            self._fail(str(e))
        finally:
            if self.done and buf:
                self.leftover = bytes(buf)
                buf.clear()

    def _fail(self, why: str) -> None:
        self.error = why
        if self.role is Role.SERVER:
            self._out += frame_bytes(make_error(ErrorCode.PEER_NOT_ALLOWED, f"authentication failed: {why}"))

    def _object(self, payload: bytes) -> dict[str, Any]:
        try:
            obj = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise AuthError("the frame is not UTF-8 JSON (or nested too deeply)") from None
        if not isinstance(obj, dict):
            raise AuthError("the frame is not a JSON object")
        return obj

    def _frame(self, payload: bytes) -> None:
        if self.role is Role.CLIENT:
            obj = self._object(payload)
            if "error" in obj:  # the server refused us: hand its error frame on as it is
                self.remote_error = frame_bytes(payload)
                self.error = "the server refused the secret handshake"
                return
            if obj.get("auth") != SCHEME:
                raise AuthError(f"the server answered {str(obj)[:80]}, not the {SCHEME} challenge")
            self._peer_nonce = _hex(obj, "nonce", NONCE_BYTES)
            expected = proof(self._secret, LABEL_SERVER, self._nonce, self._peer_nonce)
            if not hmac.compare_digest(_hex(obj, "proof", 32), expected):
                raise AuthError("the server does not know the shared secret")
            self._out += _frame_json(
                {"proof": proof(self._secret, LABEL_CLIENT, self._nonce, self._peer_nonce).hex()}
            )
            self.done = True
            return
        if self._step == 0:
            if payload[:1] != b"{":
                raise AuthError("the first frame is not an auth frame (a hello without the secret?)")
            obj = self._object(payload)
            if obj.get("auth") != SCHEME:
                raise AuthError(f"the first frame is not a {SCHEME} auth frame")
            self._peer_nonce = _hex(obj, "nonce", NONCE_BYTES)
            ps = proof(self._secret, LABEL_SERVER, self._peer_nonce, self._nonce)
            self._out += _frame_json({"auth": SCHEME, "nonce": self._nonce.hex(), "proof": ps.hex()})
            self._step = 1
            return
        obj = self._object(payload)
        expected = proof(self._secret, LABEL_CLIENT, self._peer_nonce, self._nonce)
        if not hmac.compare_digest(_hex(obj, "proof", 32), expected):
            raise AuthError("wrong proof: the peer does not know the shared secret")
        self.done = True


class AuthenticatedPipe(Pipe):
    """A pipe that runs the secret handshake first, then passes bytes through untouched.

    Client side: writes from above (the hello) wait until the handshake is done. Server side: a
    failure writes the error frame, reports ``on_failure`` and drains the peer for a bounded time
    before closing (SEC-005); the connection above sees a broken pipe.
    """

    def __init__(
        self,
        inner: Pipe,
        secret: bytes,
        role: Role,
        *,
        on_failure: Callable[[str], None] | None = None,
        linger: float = REFUSAL_LINGER,
    ) -> None:
        self.inner = inner
        self._auth = SecretHandshake(role, secret)
        self._role = role
        self._sink: PipeSink | None = None
        self._pending = bytearray()  # client writes held until the handshake is done
        self._on_failure = on_failure
        self._linger = linger
        self._discarded = 0
        self._closed = False
        self.peer_trusted = inner.peer_trusted

    def peer_credentials(self) -> Any:
        return self.inner.peer_credentials()

    def start(self, sink: PipeSink) -> None:
        self._sink = sink
        self.inner.start(self)
        if self._role is Role.CLIENT:
            self.inner.write(self._auth.initiate())

    # -- the inner pipe's sink

    def data_received(self, data: bytes | memoryview) -> None:
        sink = self._sink
        assert sink is not None
        if self._auth.done:
            sink.data_received(data)
            return
        if self._auth.failed:
            self._discard(len(data))
            return
        self._auth.receive_data(data)
        out = self._auth.data_to_send()
        if out:
            with contextlib.suppress(TransportError):
                self.inner.write(out)
        if self._auth.done:
            if self._pending:
                pending, self._pending = bytes(self._pending), bytearray()
                try:
                    self.inner.write(pending)
                except TransportError as e:
                    sink.pipe_broken(e)
                    return
            if self._auth.leftover:
                sink.data_received(self._auth.leftover)
        elif self._auth.failed:
            self._failed()

    def _failed(self) -> None:
        sink = self._sink
        assert sink is not None
        why = self._auth.error or "authentication failed"
        if self._on_failure is not None:
            self._on_failure(why)
        if self._role is Role.CLIENT:
            # The server's own error frame if it sent one, else ours: the connection above reports
            # PEER_NOT_ALLOWED as it reports any error frame in place of the welcome (FRM-016).
            frame = self._auth.remote_error or frame_bytes(
                make_error(ErrorCode.PEER_NOT_ALLOWED, f"secret handshake: {why}")
            )
            sink.data_received(frame)
            return
        sink.pipe_broken(AuthError(why))

    def _discard(self, n: int) -> None:
        self._discarded += n
        if self._discarded > REFUSAL_DISCARD:
            self.inner.close()

    def eof_received(self) -> None:
        if self._auth.failed and self._role is Role.SERVER:
            self.inner.close()
            return
        assert self._sink is not None
        self._sink.eof_received()

    def pipe_broken(self, exc: BaseException) -> None:
        assert self._sink is not None
        self._sink.pipe_broken(exc)

    # -- the pipe interface, for the connection above

    def write(self, data: bytes) -> None:
        if self._role is Role.CLIENT and not self._auth.done:
            if self._closed:
                from ..transport._errors import TransportClosed

                raise TransportClosed("the pipe is closed")
            self._pending += data
            return
        self.inner.write(data)

    def write_buffer_size(self) -> int:
        return self.inner.write_buffer_size() + len(self._pending)

    async def drain(self, low: int) -> None:
        await self.inner.drain(low)

    def pause_reading(self) -> None:
        self.inner.pause_reading()

    def resume_reading(self) -> None:
        self.inner.resume_reading()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pending.clear()
        if self._auth.failed and self._role is Role.SERVER and self._linger > 0:
            # SEC-005: let the refused client read the error frame before the close resets it
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.inner.close()
                return
            self.inner.resume_reading()
            loop.call_later(self._linger, self.inner.close)
            return
        self.inner.close()

    async def wait_closed(self) -> None:
        await self.inner.wait_closed()

    def fileno_count(self) -> int:
        return self.inner.fileno_count()


__all__ = [
    "LABEL_CLIENT",
    "LABEL_SERVER",
    "NONCE_BYTES",
    "SCHEME",
    "AuthError",
    "AuthenticatedPipe",
    "SecretHandshake",
    "proof",
    "read_secret_file",
]
