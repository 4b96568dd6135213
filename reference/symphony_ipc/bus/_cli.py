"""The bus commands of ``symphony-ipc``: the node's options of ``serve``, ``send`` and ``subscribe``.

``send ADDRESS --from ID --to TARGET`` submits one message (confirmed by the node) and prints it as
one JSON line; with ``--request`` it waits for the answer and prints that instead. ``subscribe
ADDRESS --as ID TOPIC...`` prints one JSON line per message delivered to ``ID`` (its topics' and
the ones addressed to it), highest priority first. Refusals and the bus's error answers go to
stderr with exit status 1; bad arguments, unreachable nodes and transport errors exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

from .._codec import message_to_data
from .._errors import ProtocolError
from .._model import Message, MessageType, Ttl
from .._time import NS

EXIT_REFUSED = 1
EXIT_USAGE = 2


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--payload is not JSON: {e}") from None


def add_node_options(p: argparse.ArgumentParser) -> None:
    """``serve``'s bus limits (spec/bus.md section 0)."""
    g = p.add_argument_group("bus node (spec/bus.md; ignored with --echo)")
    g.add_argument("--max-pending", type=_count, default=10_000, metavar="N", help="per endpoint (10000)")
    g.add_argument(
        "--backpressure-timeout",
        type=_seconds,
        default=30.0,
        metavar="S",
        help="a sender's wait for room (30)",
    )
    g.add_argument("--request-timeout", type=_seconds, default=30.0, metavar="S", help="default (30)")
    g.add_argument("--max-attempts", type=_count, default=3, metavar="N", help="per copy (3)")
    g.add_argument("--dlq-max", type=_count, default=1000, metavar="N", help="dead letters kept (1000)")
    g.add_argument("--history-max", type=_count, default=10_000, metavar="N", help="messages kept (10000)")
    g.add_argument(
        "--window", type=_count, default=16, metavar="N", help="copies in flight per endpoint by default (16)"
    )


def node_from_args(args: argparse.Namespace) -> int:
    """``symphony-ipc serve`` without ``--echo``: a bus node."""
    from ..security import _cli as sec
    from ._core import BusConfig
    from ._node import run_node

    try:
        config = BusConfig(
            max_pending=args.max_pending,
            backpressure_timeout_ns=int(args.backpressure_timeout * NS),
            request_timeout_ns=int(args.request_timeout * NS),
            max_attempts=args.max_attempts,
            dlq_max=args.dlq_max,
            history_max=args.history_max,
        )
    except ProtocolError as e:
        raise ValueError(e.message) from None
    return run_node(
        args.listen,
        config=config,
        codecs=args.codecs,
        version=args.protocol_version,
        security=sec.policy_from_args(args),
        handshake_timeout=sec.handshake_timeout_from_args(args),
        rate=sec.rate_from_args(args),
        default_window=args.window,
    )


def add_commands(sub: Any) -> None:
    """Add ``send`` and ``subscribe`` to the CLI's subparsers."""
    p = sub.add_parser(
        "send", help="send one message through a bus node (or a request, and await its answer)"
    )
    p.add_argument("address", metavar="ADDRESS", help="the node: unix:PATH, fifo:DIR or 'stdio:COMMAND ...'")
    p.add_argument("--from", dest="source", required=True, metavar="ID", help="the endpoint to send as")
    p.add_argument(
        "--to", dest="target", required=True, metavar="TARGET", help="ID, topic:NAME or bus:broadcast"
    )
    p.add_argument(
        "--type",
        dest="message_type",
        choices=[t.value for t in MessageType],
        default=None,
        help="message type (default Event; Request with --request)",
    )
    p.add_argument("--payload", type=_json, default=None, metavar="JSON", help="the payload (default null)")
    p.add_argument("--priority", type=int, default=0, metavar="N", help="-1000..1000 (default 0)")
    p.add_argument("--ttl", type=_seconds, default=None, metavar="S", help="time to live in seconds")
    p.add_argument("--correlation-id", default=None, metavar="UUID", help="e.g. for a Response")
    p.add_argument("--request", action="store_true", help="send a Request and print its answer")
    p.add_argument("--timeout", type=_seconds, default=30.0, metavar="S", help="the request's timeout (30)")
    p.add_argument("--codec", choices=("msgpack", "json"), default="msgpack")

    p = sub.add_parser("subscribe", help="print the messages a bus node delivers to an endpoint")
    p.add_argument("address", metavar="ADDRESS", help="the node: unix:PATH, fifo:DIR or 'stdio:COMMAND ...'")
    p.add_argument("--as", dest="endpoint", required=True, metavar="ID", help="the endpoint to register")
    p.add_argument("topics", nargs="*", metavar="TOPIC", help="topic names to subscribe to")
    p.add_argument("--count", type=_count, default=None, metavar="N", help="exit after N messages")
    p.add_argument("--window", type=_count, default=16, metavar="N", help="copies in flight (default 16)")
    p.add_argument(
        "--answer", action="store_true", help="answer every Request with a Response carrying its payload"
    )
    p.add_argument("--codec", choices=("msgpack", "json"), default="msgpack")


def _line(msg: Message) -> str:
    return json.dumps(message_to_data(msg), ensure_ascii=False, separators=(",", ":"))


def _refused(command: str, err: ProtocolError) -> int:
    print(f"symphony-ipc {command}: {err.code.value}: {err.message}", file=sys.stderr)
    return EXIT_REFUSED


async def _send(args: argparse.Namespace) -> int:
    from ._client import BusClient

    client = await BusClient.connect(args.address, args.source, codecs=(args.codec,))
    try:
        ttl = None if args.ttl is None else Ttl(int(args.ttl), round(args.ttl % 1 * NS))
        if args.request:
            answer = await client.request(
                args.target, args.payload, timeout=args.timeout, priority=args.priority
            )
            print(_line(answer), flush=True)
            return EXIT_REFUSED if answer.header.message_type is MessageType.ERROR else 0
        mtype = MessageType(args.message_type or "Event")
        msg = client.message(
            args.target,
            args.payload,
            message_type=mtype,
            priority=args.priority,
            ttl=ttl,
            correlation_id=args.correlation_id,
        )
        await client.send(msg, confirm=True)
        print(_line(msg), flush=True)
        return 0
    finally:
        await client.close()


async def _subscribe(args: argparse.Namespace) -> int:
    from ._client import BusClient

    client = await BusClient.connect(args.address, args.endpoint, prefetch=args.window, codecs=(args.codec,))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        for topic in args.topics:
            await client.subscribe(topic)
        print(
            f"symphony-ipc subscribe: {args.endpoint} on {args.address}"
            + (f", topics {', '.join(args.topics)}" if args.topics else ""),
            file=sys.stderr,
            flush=True,
        )
        seen = 0
        stopper = asyncio.ensure_future(stop.wait())
        try:
            while args.count is None or seen < args.count:
                getter = asyncio.ensure_future(client.receive())
                await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    await asyncio.gather(getter, return_exceptions=True)
                    break
                msg = getter.result()
                print(_line(msg), flush=True)
                seen += 1
                if args.answer and msg.header.message_type is MessageType.REQUEST:
                    await client.respond(msg, msg.payload)
        finally:
            stopper.cancel()
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await client.close()


def run_command(args: argparse.Namespace) -> int:
    """Run ``send`` or ``subscribe``; refusals exit 1, transport and usage errors exit 2."""
    from ..transport import TransportError

    try:
        return asyncio.run(_send(args) if args.command == "send" else _subscribe(args))
    except ProtocolError as e:
        return _refused(args.command, e)
    except (TransportError, OSError, ValueError) as e:
        print(f"symphony-ipc {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


__all__ = ["add_commands", "add_node_options", "node_from_args", "run_command"]
