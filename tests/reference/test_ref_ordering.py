"""Priority ordering (PRI-003, PRI-004): highest first, FIFO within a level, as a stable total order."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symphony_ipc as s
from symphony_conformance import strategies as sst


def msg(priority: int, tag: int) -> s.Message:
    return (
        s.MessageBuilder()
        .message_type("Event")
        .source("a")
        .target("b")
        .priority(priority)
        .payload(tag)
        .build()
    )


def test_order_unit() -> None:
    arrivals = [msg(0, 0), msg(100, 1), msg(-1000, 2), msg(100, 3), msg(1000, 4), msg(0, 5), msg(-100, 6)]
    assert [m.payload for m in s.order(arrivals)] == [4, 1, 3, 0, 5, 6, 2]
    assert s.order([]) == []


def test_priority_queue_unit() -> None:
    q = s.PriorityQueue()
    assert not q
    assert len(q) == 0
    with pytest.raises(IndexError):
        q.pop()
    for p, tag in [(0, 0), (0, 1), (100, 2), (0, 3), (100, 4), (-100, 5)]:
        q.push(msg(p, tag))
    assert len(q) == 6
    assert q
    assert q.peek().payload == 2
    assert [q.pop().payload for _ in range(6)] == [2, 4, 0, 1, 3, 5]
    assert not q


def test_priority_queue_fifo_within_a_level_at_scale() -> None:
    q = s.PriorityQueue()
    for tag in range(1000):
        q.push(msg(s.Priority.NORMAL, tag))
    assert [q.pop().payload for _ in range(1000)] == list(range(1000))


# a few levels so that ties are common
levels = st.one_of(st.sampled_from([0, 100, -100]), sst.priorities())


@settings(deadline=None)
@given(st.lists(levels, max_size=40))
def test_order_is_the_stable_sort_by_descending_priority(prios: list[int]) -> None:
    arrivals = [msg(p, i) for i, p in enumerate(prios)]
    expected = sorted(range(len(prios)), key=lambda i: (-prios[i], i))
    got = s.order(arrivals)
    assert [m.payload for m in got] == expected
    assert sorted(m.payload for m in got) == list(range(len(prios)))  # a permutation
    assert s.order(got) == got  # idempotent: a processing order is already in order
    for a, b in itertools.pairwise(got):  # total order: adjacent pairs are in order
        assert (-a.header.priority, a.payload) < (-b.header.priority, b.payload)


@settings(deadline=None)
@given(st.lists(levels, max_size=40))
def test_priority_queue_agrees_with_order(prios: list[int]) -> None:
    arrivals = [msg(p, i) for i, p in enumerate(prios)]
    q = s.PriorityQueue()
    for m in arrivals:
        q.push(m)
    assert [q.pop().payload for _ in range(len(arrivals))] == [m.payload for m in s.order(arrivals)]


@settings(deadline=None)
@given(st.lists(st.tuples(st.booleans(), levels), max_size=60))
def test_priority_queue_interleaved_push_pop(ops: list[tuple[bool, int]]) -> None:
    """Against a model: pop returns the highest priority, earliest pushed, of what is queued."""
    q = s.PriorityQueue()
    model: list[tuple[int, int]] = []  # (priority, seq)
    for seq, (is_pop, prio) in enumerate(ops):
        if is_pop and model:
            best = min(model, key=lambda e: (-e[0], e[1]))
            model.remove(best)
            assert q.pop().payload == best[1]
        else:
            model.append((prio, seq))
            q.push(msg(prio, seq))
        assert len(q) == len(model)
