"""The ``symphony-ipc`` command: the reference implementation's CLI."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from ._serve import add_commands as add_transport_commands
from ._serve import run_command as run_transport_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="symphony-ipc", description=__doc__)
    parser.add_argument("--version", action="version", version=f"symphony-ipc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("version", help="print the version")
    sub.add_parser(
        "driver",
        help="serve the reference over the conformance driver protocol on stdin/stdout (spec/driver/)",
    )
    add_transport_commands(sub)
    from .bus._cli import add_commands as add_bus_commands

    add_bus_commands(sub)
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "subscribe" and not any(x.startswith("-") for x in extra):
        args.topics += extra  # ``subscribe ADDRESS --as ID TOPIC...``: topics after an option
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "version":
        print(__version__)
    elif args.command == "driver":
        from ._driver import serve

        return serve()
    elif args.command in ("serve", "ping"):
        return run_transport_command(args)
    elif args.command in ("send", "subscribe"):
        from .bus._cli import run_command as run_bus_command

        return run_bus_command(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
