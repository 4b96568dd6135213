"""The Symphony IPC message bus in one process (spec/bus.md).

:class:`BusCore` is the sans-I/O core (routing, pending queues, TTL, retries, backpressure,
dead letters, history, statistics) on an injectable clock; :class:`MessageBus` is its asyncio
shell (handler tasks, awaitable requests, backpressure waits). A bus node that serves the core to
other processes over the transports wraps the same core.
"""

from __future__ import annotations

from ._asyncio import Endpoint, MessageBus
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

__all__ = [
    "BROADCAST",
    "MAX_MESSAGE_SIZE",
    "SYSTEM_SOURCE",
    "TIMEOUT_KEY",
    "TOPIC_PREFIX",
    "BusConfig",
    "BusCore",
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
]
