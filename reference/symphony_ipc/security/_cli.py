"""The security options of ``symphony-ipc serve`` and ``ping`` (spec/security.md)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._auth import read_secret_file
from ._policy import DEFAULT_MAX_CONNECTIONS, SecurityPolicy
from ._ratelimit import RateLimit


def _octal(text: str) -> int:
    try:
        mode = int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an octal mode such as 600, got {text!r}") from None
    if not 0 <= mode <= 0o777:
        raise argparse.ArgumentTypeError(f"{text!r} is not a permission mode")
    return mode


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
        return value

    return parse


def _plugin_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="SPEC",
        help="load a transport plug-in first: python:path/to/file.py:factory or python:module:factory "
        "(e.g. python:examples/tcp_transport.py:make for tcp:127.0.0.1:PORT)",
    )


def add_serve_options(p: argparse.ArgumentParser) -> None:
    """``serve``'s options: who may connect and the limits."""
    g = p.add_argument_group("security (spec/security.md)")
    g.add_argument(
        "--allow-uid",
        action="append",
        type=int,
        default=[],
        metavar="UID",
        help="admit peers of this user id (repeatable; default: this process's user only)",
    )
    g.add_argument(
        "--allow-gid", action="append", type=int, default=[], metavar="GID", help="admit peers of group GID"
    )
    g.add_argument("--allow-any-uid", action="store_true", help="admit peers of every user (no allow list)")
    g.add_argument(
        "--allow-unverified",
        action="store_true",
        help="admit peers whose credentials the transport cannot tell (e.g. tcp) without a secret",
    )
    g.add_argument(
        "--secret-file",
        default=None,
        metavar="PATH",
        help="require the shared-secret handshake (HMAC-SHA256) with the secret in PATH (mode 0600)",
    )
    g.add_argument(
        "--socket-mode", type=_octal, default=0o600, metavar="MODE", help="mode of a Unix socket file (600)"
    )
    g.add_argument(
        "--no-directory-check",
        action="store_true",
        help="listen even where group or others could replace the socket (not recommended)",
    )
    g.add_argument(
        "--max-connections",
        type=_positive(int),
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help=f"refuse beyond N connections: CONNECTION_LIMIT (default {DEFAULT_MAX_CONNECTIONS}; 0: none)",
    )
    g.add_argument(
        "--handshake-timeout",
        type=_positive(float),
        default=5.0,
        metavar="S",
        help="close a connection whose handshake is not done in S seconds (default 5; 0: never)",
    )
    g.add_argument(
        "--rate",
        type=_positive(float),
        default=None,
        metavar="R",
        help="per-connection limit in messages per second; over it a message gets RATE_LIMITED",
    )
    g.add_argument("--burst", type=_positive(float), default=None, metavar="B", help="burst size")
    _plugin_option(p)


def add_client_options(p: argparse.ArgumentParser) -> None:
    """``ping``'s options: the shared secret and plug-ins."""
    p.add_argument("--secret-file", default=None, metavar="PATH", help="authenticate with the secret in PATH")
    _plugin_option(p)


def policy_from_args(args: argparse.Namespace) -> SecurityPolicy:
    uids: frozenset[int] | None = None
    if not args.allow_any_uid:
        import os

        uids = frozenset(args.allow_uid) if args.allow_uid else frozenset({os.geteuid()})
    return SecurityPolicy(
        allow_uids=uids,
        allow_gids=frozenset(args.allow_gid),
        allow_unverified=args.allow_unverified,
        secret=read_secret_file(args.secret_file) if args.secret_file else None,
        max_connections=args.max_connections or None,
        socket_mode=args.socket_mode,
        check_directory=not args.no_directory_check,
    )


def handshake_timeout_from_args(args: argparse.Namespace) -> float | None:
    return float(args.handshake_timeout) or None


def rate_from_args(args: argparse.Namespace) -> RateLimit | None:
    if not args.rate:
        if args.burst:
            raise ValueError("--burst needs --rate")
        return None
    return RateLimit(float(args.rate), float(args.burst) if args.burst else None)


def secret_from_args(args: argparse.Namespace) -> bytes | None:
    return read_secret_file(args.secret_file) if getattr(args, "secret_file", None) else None


def load_plugins(specs: list[str]) -> None:
    """Call each ``python:module:factory`` / ``python:path.py:factory`` (it registers its scheme)."""
    for spec in specs:
        kind, _, rest = spec.partition(":")
        module_name, sep, attr = rest.rpartition(":")
        if kind != "python" or not sep or not module_name or not attr:
            raise ValueError(f"--plugin {spec!r}: expected python:module:factory or python:path.py:factory")
        if module_name.endswith(".py"):
            path = Path(module_name).resolve()
            mod_spec = importlib.util.spec_from_file_location(path.stem, path)
            if mod_spec is None or mod_spec.loader is None or not path.is_file():
                raise ValueError(f"--plugin {spec!r}: no such file {module_name}")
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[path.stem] = module
            mod_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
        getattr(module, attr)()


__all__ = [
    "add_client_options",
    "add_serve_options",
    "handshake_timeout_from_args",
    "load_plugins",
    "policy_from_args",
    "rate_from_args",
    "secret_from_args",
    "settings_from_config",
]


def settings_from_config(
    config: Mapping[str, Any] | None,
) -> tuple[SecurityPolicy, float | None, RateLimit | None]:
    """The policy, handshake timeout and rate limit of a ``listen`` request's ``security`` member
    (spec/driver: ``handshake_timeout``, ``max_connections``, ``rate``, ``burst``, ``allow_uids``,
    ``socket_mode``, ``secret_hex``; absent members keep the defaults)."""
    import os

    from ..transport._base import HANDSHAKE_TIMEOUT

    c = dict(config or {})
    uids = c.get("allow_uids")
    secret_hex = c.get("secret_hex")
    policy = SecurityPolicy(
        allow_uids=frozenset(int(u) for u in uids) if uids is not None else frozenset({os.geteuid()}),
        secret=bytes.fromhex(secret_hex) if secret_hex else None,
        max_connections=int(c.get("max_connections", DEFAULT_MAX_CONNECTIONS)),
        socket_mode=int(c.get("socket_mode", 0o600)),
    )
    timeout = c.get("handshake_timeout", HANDSHAKE_TIMEOUT)
    rate = (
        RateLimit(float(c["rate"]), float(c["burst"]) if c.get("burst") else None) if c.get("rate") else None
    )
    return policy, (float(timeout) if timeout else None), rate
