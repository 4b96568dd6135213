"""The Symphony IPC message bus in one process (spec/bus.md).

:class:`BusCore` is the sans-I/O core (routing, pending queues, TTL, retries, backpressure,
dead letters, history, statistics) on an injectable clock; :class:`MessageBus` is its asyncio
shell (handler tasks, awaitable requests, backpressure waits); :class:`BusNode` serves a
``MessageBus`` to other processes over the transports (spec/bus.md section 14) and
:class:`BusClient` is one endpoint of a node in another process.
"""

from __future__ import annotations

from ._asyncio import Endpoint, MessageBus
from ._client import BusClient, request_sync, send_sync
from ._core import (
    BROADCAST,
    MAX_MESSAGE_SIZE,
    SYSTEM_SOURCE,
    TIMEOUT_KEY,
    TOPIC_PREFIX,
    BusConfig,
    BusCore,
    BusStats,
    DeadLetter,
    Delivery,
    Handler,
    Rule,
    TimerHandle,
    Waiter,
    check_size,
    dead_letter_to_data,
    error_payload,
)
from ._node import ACK_KEY, ACK_TARGET, REPLY_KEY, BusNode

__all__ = [
    "ACK_KEY",
    "ACK_TARGET",
    "BROADCAST",
    "MAX_MESSAGE_SIZE",
    "SYSTEM_SOURCE",
    "TIMEOUT_KEY",
    "REPLY_KEY",
    "TOPIC_PREFIX",
    "BusClient",
    "BusConfig",
    "BusCore",
    "BusNode",
    "BusStats",
    "DeadLetter",
    "Delivery",
    "Endpoint",
    "Handler",
    "MessageBus",
    "Rule",
    "TimerHandle",
    "Waiter",
    "check_size",
    "dead_letter_to_data",
    "error_payload",
    "request_sync",
    "send_sync",
]
