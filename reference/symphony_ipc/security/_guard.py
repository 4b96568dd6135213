"""A listener's gatekeeper: admission (credentials, connection limit), refusals, counts and logs
(spec/security.md SEC-004..SEC-008, ROB-002, ROB-006).

:class:`ListenerGuard` is what ``PipeListener`` consults for each incoming pipe, before the pipe
delivers a single byte; a refused pipe gets its error frame and a bounded, draining close here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .._errors import ErrorCode
from ..transport._errors import TransportError
from ..transport.sansio import frame_bytes, make_error
from ._policy import REFUSAL_DISCARD, PeerCredentials, SecurityPolicy

if TYPE_CHECKING:
    from ..transport._base import Pipe

log = logging.getLogger("symphony_ipc.security")


@dataclass
class SecurityStats:
    """What a listener let in and kept out, per reason (SEC-008)."""

    admitted: int = 0  #: pipes that went on to the handshake
    live: int = 0  #: connections open now (handshaking or accepted, not yet closed)
    peak_live: int = 0
    refused_peer: int = 0  #: credentials not on the allow list (SEC-005)
    refused_unverified: int = 0  #: no credentials and no secret (SEC-006)
    refused_limit: int = 0  #: over the connection limit (ROB-006)
    auth_failures: int = 0  #: the secret handshake failed (SEC-007)
    handshake_timeouts: int = 0  #: ROB-002
    handshake_failures: int = 0  #: every other failed handshake (FRM-012, FRM-013, a peer gone)

    @property
    def refused(self) -> int:
        return self.refused_peer + self.refused_unverified + self.refused_limit + self.auth_failures

    def to_dict(self) -> dict[str, int]:
        return {**asdict(self), "refused": self.refused}


class _Drain:
    """The sink of a refused pipe: discards what the peer still sends, closes at its end."""

    def __init__(self, pipe: Pipe, done: Callable[[Pipe], None]) -> None:
        self.pipe = pipe
        self.taken = 0
        self._done = done

    def data_received(self, data: bytes | memoryview) -> None:
        self.taken += len(data)
        if self.taken > REFUSAL_DISCARD:
            self._done(self.pipe)

    def eof_received(self) -> None:
        self._done(self.pipe)

    def pipe_broken(self, exc: BaseException) -> None:
        self._done(self.pipe)


class ListenerGuard:
    """Admission control of one listener."""

    def __init__(self, policy: SecurityPolicy, address: str) -> None:
        self.policy = policy
        self.address = address
        self.stats = SecurityStats()
        self._lingering: dict[Pipe, asyncio.TimerHandle | None] = {}

    # -- admission

    def admit(self, pipe: Pipe) -> tuple[ErrorCode, str] | None:
        """None to admit ``pipe``, else the refusal (code, message); nothing was read from it."""
        policy = self.policy
        creds: PeerCredentials | None = None
        if not pipe.peer_trusted:
            creds = pipe.peer_credentials()
            why = policy.refusal(creds)
            if why is not None:
                if creds is None:
                    self.stats.refused_unverified += 1
                else:
                    self.stats.refused_peer += 1
                log.warning("%s: refused: %s", self.address, why)
                return ErrorCode.PEER_NOT_ALLOWED, why
        limit = policy.max_connections
        if limit is not None and self.stats.live >= limit:
            self.stats.refused_limit += 1
            log.warning(
                "%s: refused %s: %d connections open, the limit is %d",
                self.address,
                creds or "a peer",
                self.stats.live,
                limit,
            )
            return ErrorCode.CONNECTION_LIMIT, f"the server has {limit} connections open, its limit"
        self.stats.admitted += 1
        return None

    def opened(self) -> Callable[[], None]:
        """Count one more live connection; call the returned function (once) when it closes."""
        st = self.stats
        st.live += 1
        st.peak_live = max(st.peak_live, st.live)
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                st.live -= 1

        return release

    # -- outcomes of the handshake, for the counts and the log

    def auth_failed(self, why: str) -> None:
        self.stats.auth_failures += 1
        log.warning("%s: secret handshake failed: %s", self.address, why)

    def handshake_timed_out(self) -> None:
        self.stats.handshake_timeouts += 1
        log.warning("%s: a handshake did not complete in time; closed", self.address)

    def handshake_failed(self, exc: BaseException) -> None:
        self.stats.handshake_failures += 1
        log.info("%s: handshake failed: %s", self.address, exc)

    # -- refusing

    def refuse(self, pipe: Pipe, code: ErrorCode, message: str) -> None:
        """Send the error frame and close: at the peer's end of stream, after ``linger`` seconds or
        after 64 KiB discarded, whichever comes first (SEC-005). Never reads a byte into a parser."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - listeners run on a loop
            pipe.close()
            return
        try:
            pipe.start(_Drain(pipe, self._finish))
            pipe.write(frame_bytes(make_error(code, message)))
        except TransportError:
            pipe.close()
            return
        if self.policy.linger <= 0:
            self._lingering[pipe] = None
            self._finish(pipe)
            return
        self._lingering[pipe] = loop.call_later(self.policy.linger, self._finish, pipe)

    def _finish(self, pipe: Pipe) -> None:
        timer = self._lingering.pop(pipe, None)
        if timer is not None:
            timer.cancel()
        pipe.close()

    @property
    def lingering(self) -> int:
        return len(self._lingering)

    def close(self) -> None:
        """Close every refused pipe still lingering (the listener closes)."""
        for pipe in list(self._lingering):
            with contextlib.suppress(Exception):
                self._finish(pipe)

    def __repr__(self) -> str:
        return f"<ListenerGuard {self.address} {self.stats.to_dict()}>"


def describe(stats: SecurityStats) -> dict[str, Any]:
    """The statistics as a plain dict (for logs and ``serve``'s exit line)."""
    return stats.to_dict()


__all__ = ["ListenerGuard", "SecurityStats", "describe", "log"]
