"""Seeded security faults: the reference with one defence removed.

Each mutant is an implementation (``--impl``) registered in :data:`CATALOGUE` with the requirement
ids it breaks; its echo endpoints (``listen(scheme, security=...)``) ignore one part of the
configuration the security checks ask for, or accept what they must refuse. A conformance run of
the profile ``security`` against it must exit 1 and name them::

    symphony-conformance run --profile security \\
        --impl python:symphony_conformance.security_mutants:no_rate_limit

tests/security/test_security_conformance.py runs them all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar, Final, TypeVar

from symphony_ipc._driver import EchoEndpoints
from symphony_ipc.security import RateLimit, SecurityPolicy, settings_from_config
from symphony_ipc.transport import sansio

from ._adapters import ReferenceImplementation
from ._catalogue import ImplMutant
from ._impl import Endpoint, Implementation, ImplInfo

__all__ = [
    "CATALOGUE",
    "SecurityMutant",
    "no_connection_limit",
    "no_handshake_timeout",
    "no_peer_check",
    "no_rate_limit",
    "no_secret_check",
    "no_size_check",
]

Settings = tuple[SecurityPolicy, float | None, RateLimit | None]
Mutation = Callable[[Settings], Settings]


class SecurityMutant(ImplMutant):
    """One seeded security fault: what it breaks (on the profile ``security``) and how to load it."""

    profile: ClassVar[str] = "security"


CATALOGUE: dict[str, SecurityMutant] = {}
"""Every registered security mutant, by name."""

F = TypeVar("F", bound=Callable[[], Any])


def _mutant(breaks: Sequence[str], checks: Sequence[str], description: str) -> Callable[[F], F]:
    def register(factory: F) -> F:
        name = factory.__name__
        if name in CATALOGUE:
            raise ValueError(f"security mutant {name!r} is registered twice")
        CATALOGUE[name] = SecurityMutant(name, tuple(breaks), tuple(checks), description, factory)
        return factory

    return register


# ---------------------------------------------------------------- the broken endpoints


class _NoLimitDecoder(sansio.FrameDecoder):
    """A frame decoder that never refuses a length: it waits for the payload instead."""

    @property
    def limit(self) -> int:
        return 0xFFFFFFFF

    @limit.setter
    def limit(self, value: int) -> None:
        pass


class _NoLimitConnection(sansio.Connection):
    @staticmethod
    def _new_decoder(mode: sansio.Mode, limit: int) -> sansio.Decoder:
        return sansio.NdjsonDecoder(limit) if mode is sansio.Mode.NDJSON else _NoLimitDecoder(limit)


class _MutantEndpoints(EchoEndpoints):
    """The reference's echo endpoints, their settings passed through ``mutation`` and their
    connections' cores of class ``core``."""

    def __init__(self, mutation: Mutation, core: type[sansio.Connection] | None = None) -> None:
        super().__init__()
        self._mutation = mutation
        self._core = core

    async def _serve(self, address: str, security: Mapping[str, Any] | None = None) -> None:
        from symphony_ipc._serve import serve_echo
        from symphony_ipc.transport import ListenOptions, PipeListener, parse_address

        policy, timeout, rate = self._mutation(settings_from_config(security))
        core = self._core

        class Listener(PipeListener):
            def on_pipe(self, pipe: Any) -> None:
                if core is None:
                    super().on_pipe(pipe)
                    return
                original = sansio.Connection
                sansio.Connection = core  # type: ignore[misc]
                try:
                    super().on_pipe(pipe)
                finally:
                    sansio.Connection = original  # type: ignore[misc]

        scheme, target = parse_address(address)
        options = ListenOptions(handshake_timeout=timeout, security=policy)
        listener = Listener(address, options)
        listener._attach(await scheme.serve(target, listener.on_pipe, options))
        self._listeners.append(listener)
        self._tasks.append(asyncio.get_running_loop().create_task(serve_echo(listener, rate=rate)))


class _Mutant(ReferenceImplementation):
    """The reference whose echo endpoints carry one seeded security fault."""

    def __init__(self, name: str, mutation: Mutation, core: type[sansio.Connection] | None = None) -> None:
        super().__init__()
        self._name = name
        self._mutation = mutation
        self._core_class = core

    @property
    def info(self) -> ImplInfo:
        return replace(super().info, name=f"mutant {self._name} (of the reference)")

    def listen(
        self, scheme: str, security: Mapping[str, Any] | None = None, *, role: str = "echo"
    ) -> Endpoint:
        if self._endpoints is None and scheme != "stdio":
            self._endpoints = _MutantEndpoints(self._mutation, self._core_class)
        return super().listen(scheme, security, role=role)


_SAME: Final[Mutation] = lambda settings: settings  # noqa: E731


@_mutant(["ROB-001"], ["oversize_length"], "the frame decoder waits for the payload of any length")
def no_size_check() -> Implementation:
    return _Mutant("no_size_check", _SAME, _NoLimitConnection)


@_mutant(["SEC-004", "SEC-005"], ["peer_not_allowed", "foreign_user"], "the allow list is ignored")
def no_peer_check() -> Implementation:
    return _Mutant("no_peer_check", lambda s: (replace(s[0], allow_uids=None), s[1], s[2]))


@_mutant(["ROB-007"], ["rate_limit"], "the rate limit is ignored: every message is processed")
def no_rate_limit() -> Implementation:
    return _Mutant("no_rate_limit", lambda s: (s[0], s[1], None))


@_mutant(["ROB-002"], ["slow_handshake"], "a handshake may take forever (no handshake timeout)")
def no_handshake_timeout() -> Implementation:
    return _Mutant("no_handshake_timeout", lambda s: (s[0], None, s[2]))


@_mutant(["ROB-006"], ["connection_flood"], "no connection limit")
def no_connection_limit() -> Implementation:
    return _Mutant("no_connection_limit", lambda s: (replace(s[0], max_connections=None), s[1], s[2]))


@_mutant(["SEC-007"], ["secret"], "the shared secret is ignored: no secret handshake")
def no_secret_check() -> Implementation:
    return _Mutant("no_secret_check", lambda s: (replace(s[0], secret=None), s[1], s[2]))
