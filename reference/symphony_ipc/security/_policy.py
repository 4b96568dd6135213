"""Who may connect (spec/security.md section 1): peer credentials, the allow list, safe directories.

Nothing here does I/O on a connection: the credentials come from the kernel (``SO_PEERCRED``, the
owner of a FIFO), the decision is a pure function of them and the policy, and the listener acts on
it (``symphony_ipc.transport._base.PipeListener`` through :mod:`._guard`).
"""

from __future__ import annotations

import os
import socket
import stat
import struct
from dataclasses import dataclass, field
from typing import Final

from ..transport._errors import AddressError

DEFAULT_SOCKET_MODE: Final = 0o600  #: SEC-001
DEFAULT_MAX_CONNECTIONS: Final = 512  #: ROB-006
REFUSAL_LINGER: Final = 1.0  #: SEC-005: seconds a refused connection is drained before it closes
REFUSAL_DISCARD: Final = 64 << 10  #: SEC-005: bytes a refused connection may send meanwhile
_UCRED: Final = struct.Struct("3i")  # struct ucred {pid_t pid; uid_t uid; gid_t gid;} (Linux)


@dataclass(frozen=True, slots=True)
class PeerCredentials:
    """Who is at the other end, as the kernel says (SEC-004)."""

    pid: int | None
    uid: int
    gid: int
    source: str  #: ``SO_PEERCRED``, ``fifo-owner`` (a FIFO or pipe: its creator) or ``in-process``

    def __str__(self) -> str:
        pid = f"pid {self.pid} " if self.pid else ""
        return f"{pid}uid {self.uid} gid {self.gid} ({self.source})"


def own_credentials() -> PeerCredentials:
    """This process's credentials (the peer of an in-process transport is this very process)."""
    return PeerCredentials(os.getpid(), os.geteuid(), os.getegid(), "in-process")


def peer_credentials_of_fd(fd: int) -> PeerCredentials | None:
    """The credentials of the process at the other end of ``fd``, or None when the kernel has none.

    A Unix socket: ``SO_PEERCRED`` (Linux; the credentials at ``connect`` time). A FIFO or pipe: its
    owner, i.e. the user of the process that created it (the client creates its FIFO pair, TRN-003).
    Anything else (a TCP socket, a platform without ``SO_PEERCRED``): None.
    """
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    if stat.S_ISFIFO(st.st_mode):
        return PeerCredentials(None, st.st_uid, st.st_gid, "fifo-owner")
    if not stat.S_ISSOCK(st.st_mode) or not hasattr(socket, "SO_PEERCRED"):
        return None
    sock = socket.socket(fileno=fd)
    try:
        if sock.family != socket.AF_UNIX:
            return None
        pid, uid, gid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    except OSError:
        return None
    finally:
        sock.detach()  # the descriptor stays the pipe's
    if uid < 0:
        return None
    return PeerCredentials(pid or None, uid, gid, "SO_PEERCRED")


def _own_uid() -> frozenset[int]:
    return frozenset({os.geteuid()})


@dataclass(frozen=True)
class SecurityPolicy:
    """What a listener admits (spec/security.md). The defaults are the safe ones.

    ``allow_uids``: user ids admitted (default: our effective uid; ``None``: any user).
    ``allow_gids``: peers whose primary gid is here are admitted too.
    ``allow_unverified``: admit peers whose credentials the transport cannot tell (SEC-006).
    ``secret``: run the shared-secret handshake before the hello (SEC-007, section 2).
    ``max_connections``: live connections, handshakes included (ROB-006; ``None``: no limit).
    ``socket_mode``: the mode of a Unix socket file (SEC-001).
    ``check_directory``: refuse to listen in an unsafe directory (SEC-002).
    """

    allow_uids: frozenset[int] | None = field(default_factory=_own_uid)
    allow_gids: frozenset[int] = frozenset()
    allow_unverified: bool = False
    secret: bytes | None = None
    max_connections: int | None = DEFAULT_MAX_CONNECTIONS
    socket_mode: int = DEFAULT_SOCKET_MODE
    check_directory: bool = True
    linger: float = REFUSAL_LINGER

    def __post_init__(self) -> None:
        if self.secret is not None and len(self.secret) < 16:
            raise ValueError("a shared secret has at least 16 bytes (spec/security.md section 2)")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError("max_connections must be at least 1 (or None)")
        if not 0 <= self.socket_mode <= 0o777:
            raise ValueError(f"socket_mode {self.socket_mode:#o} is not a permission mode")
        if self.linger < 0:
            raise ValueError("linger must be >= 0")

    @classmethod
    def open(cls) -> SecurityPolicy:
        """No checks at all: any user, unverified peers, no connection limit (tests, trusted setups)."""
        return cls(allow_uids=None, allow_unverified=True, max_connections=None, check_directory=False)

    def refusal(self, creds: PeerCredentials | None) -> str | None:
        """Why a peer with ``creds`` is refused (SEC-004, SEC-006), or None if it is admitted."""
        if creds is None:
            if self.secret is not None or self.allow_unverified:
                return None
            return (
                "the transport cannot tell the peer's credentials; configure a shared secret "
                "or allow unverified peers (SEC-006)"
            )
        if self.allow_uids is None or creds.uid in self.allow_uids or creds.gid in self.allow_gids:
            return None
        return f"peer {creds} is not on the allow list"


class UnsafeDirectory(AddressError):
    """The directory of a socket or of FIFOs, or one of its ancestors, is unsafe (SEC-002)."""


def _check_one(path: str, euid: int) -> None:
    try:
        st = os.stat(path)
    except OSError as e:
        raise UnsafeDirectory(f"{path}: {e.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeDirectory(f"{path} is not a directory")
    if st.st_uid not in (euid, 0):
        raise UnsafeDirectory(
            f"{path} is owned by uid {st.st_uid}, neither this user ({euid}) nor root (SEC-002)"
        )
    writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if writable and not st.st_mode & stat.S_ISVTX:
        who = (
            "group and others"
            if writable == stat.S_IWGRP | stat.S_IWOTH
            else "group"
            if writable == stat.S_IWGRP
            else "others"
        )
        raise UnsafeDirectory(
            f"{path} is writable by {who} (mode {stat.S_IMODE(st.st_mode):04o}) without the sticky bit: "
            "another user could replace what is listening there (SEC-002)"
        )


def check_directory(directory: str) -> None:
    """Raise :class:`UnsafeDirectory` unless ``directory`` and every ancestor — of the path as given
    and of its resolved form (symlinks followed) — is a directory owned by us or root and not
    writable by group or others unless sticky (SEC-002)."""
    euid = os.geteuid()
    seen: set[str] = set()
    for start in (os.path.abspath(directory), os.path.realpath(directory)):
        path = start
        while path not in seen:
            seen.add(path)
            _check_one(path, euid)
            parent = os.path.dirname(path)
            if parent == path:
                break
            path = parent


__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_SOCKET_MODE",
    "PeerCredentials",
    "SecurityPolicy",
    "UnsafeDirectory",
    "check_directory",
    "own_credentials",
    "peer_credentials_of_fd",
]
