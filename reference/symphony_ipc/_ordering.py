"""Priority ordering: highest priority first, FIFO within a level (PRI-003, PRI-004)."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable

from ._model import Message


def order(messages: Iterable[Message]) -> list[Message]:
    """The processing order of ``messages`` given in arrival order (a stable sort)."""
    return sorted(messages, key=lambda m: -m.header.priority)


class PriorityQueue:
    """A priority queue of messages; ``pop`` returns the highest priority, oldest first."""

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Message]] = []
        self._seq = itertools.count()

    def push(self, msg: Message) -> None:
        heapq.heappush(self._heap, (-msg.header.priority, next(self._seq), msg))

    def pop(self) -> Message:
        """Remove and return the next message; ``IndexError`` when empty."""
        return heapq.heappop(self._heap)[2]

    def peek(self) -> Message:
        return self._heap[0][2]

    def __len__(self) -> int:
        return len(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)
