"""Security and robustness of the reference (spec/security.md).

* who may connect: :class:`SecurityPolicy` (allow list of uids/gids, connection limit, socket mode,
  directory checks, the shared secret), peer credentials from the kernel
  (:func:`peer_credentials_of_fd`), :func:`check_directory`; a listener applies its policy through a
  :class:`ListenerGuard` and counts refusals in :class:`SecurityStats`;
* the shared-secret handshake for transports without credentials: :class:`SecretHandshake`
  (sans-I/O) and :class:`AuthenticatedPipe`;
* per-sender rate limits: :class:`TokenBucket`, :class:`RateLimiter`, :func:`rate_limited_reply`.

``listen(address, security=SecurityPolicy(...))`` and ``connect(address, secret=...)`` in
:mod:`symphony_ipc.transport` take them; ``symphony-ipc serve`` exposes them as options.
"""

from __future__ import annotations

from ._auth import AuthenticatedPipe, AuthError, SecretHandshake, proof, read_secret_file
from ._cli import settings_from_config
from ._guard import ListenerGuard, SecurityStats
from ._policy import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_SOCKET_MODE,
    PeerCredentials,
    SecurityPolicy,
    UnsafeDirectory,
    check_directory,
    own_credentials,
    peer_credentials_of_fd,
)
from ._ratelimit import RateLimit, RateLimiter, TokenBucket, rate_limited_error, rate_limited_reply

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_SOCKET_MODE",
    "AuthError",
    "AuthenticatedPipe",
    "ListenerGuard",
    "PeerCredentials",
    "RateLimit",
    "RateLimiter",
    "SecretHandshake",
    "SecurityPolicy",
    "SecurityStats",
    "TokenBucket",
    "UnsafeDirectory",
    "check_directory",
    "own_credentials",
    "peer_credentials_of_fd",
    "proof",
    "rate_limited_error",
    "rate_limited_reply",
    "read_secret_file",
    "settings_from_config",
]
