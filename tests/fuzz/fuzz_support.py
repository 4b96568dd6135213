"""Shared by the fuzz tests: the profiles (short in CI, thorough on request), the seed corpus (the
golden vectors of fixtures/), mutation strategies, and the oracle: the only outcomes allowed are a
value or a typed error (spec/security.md ROB-004, ROB-005).

``SYMPHONY_FUZZ=thorough`` (or ``tox -e fuzz``) runs 25,000 examples per test instead of 150;
``SYMPHONY_FUZZ_EXAMPLES=N`` sets any other count.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tracemalloc
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
THOROUGH = os.environ.get("SYMPHONY_FUZZ", "") == "thorough"
EXAMPLES = int(os.environ.get("SYMPHONY_FUZZ_EXAMPLES", "25000" if THOROUGH else "150"))
#: a single input taking longer than this is a hang (generous: the machine is shared)
HANG_SECONDS = 10

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # time is bounded by the watchdog below, not by Hypothesis' flaky deadline
    database=None,
    derandomize=not THOROUGH,  # CI: the same inputs every run; thorough: new ones each time
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@cache
def corpus(codec: str) -> tuple[bytes, ...]:
    """The input bytes of every golden decode/receive vector of ``codec`` (valid and invalid)."""
    out: list[bytes] = []
    for path in sorted(FIXTURES.glob("*.json")):
        for v in json.loads(path.read_text(encoding="utf-8"))["vectors"]:
            inp = v.get("input", {})
            if v.get("operation") not in ("decode", "receive") or v.get("codec", "json") != codec:
                continue
            if "hex" in inp:
                out.append(bytes.fromhex(inp["hex"]))
            elif "json" in inp:
                out.append(str(inp["json"]).encode("utf-8", "surrogatepass"))
    return tuple(out)


@cache
def framing_corpus() -> tuple[dict[str, Any], ...]:
    """The ``frames`` and ``handshake`` vectors of fixtures/framing.json."""
    doc = json.loads((FIXTURES / "framing.json").read_text(encoding="utf-8"))
    return tuple(v for v in doc["vectors"] if v["operation"] in ("frames", "handshake"))


@st.composite
def mutated(draw: st.DrawFn, seeds: tuple[bytes, ...]) -> bytes:
    """A seed with a few edits: bit flips, byte changes, insertions, deletions, truncation,
    duplication of a slice, a splice with another seed, interesting integers."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "dup", "splice", "int"]))
        n = len(data)
        if op == "flip" and n:
            i = draw(st.integers(0, n - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and n:
            data[draw(st.integers(0, n - 1))] = draw(st.integers(0, 255))
        elif op == "insert":
            i = draw(st.integers(0, n))
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and n:
            i = draw(st.integers(0, n - 1))
            del data[i : i + draw(st.integers(1, 8))]
        elif op == "truncate" and n:
            del data[draw(st.integers(0, n - 1)) :]
        elif op == "dup" and n:
            i = draw(st.integers(0, n - 1))
            j = draw(st.integers(i, min(n, i + 64)))
            data[j:j] = data[i:j] * draw(st.integers(1, 4))
        elif op == "splice":
            other = draw(st.sampled_from(seeds))
            i = draw(st.integers(0, n))
            j = draw(st.integers(0, len(other)))
            data = data[:i] + other[j:]
        elif op == "int" and n:
            i = draw(st.integers(0, n - 1))
            value = draw(st.sampled_from([0, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]))
            width = draw(st.sampled_from([1, 2, 4]))
            data[i : i + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "big")
    return bytes(data)


def any_bytes(seeds: tuple[bytes, ...]) -> st.SearchStrategy[bytes]:
    """Random bytes, and mutations of the golden vectors (most inputs: they reach deeper)."""
    return st.one_of(st.binary(max_size=2048), mutated(seeds), mutated(seeds))


class Hang(Exception):
    pass


@contextlib.contextmanager
def watchdog(seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Fail with :class:`Hang` when the body runs longer than ``seconds`` (main thread only)."""

    def fire(signum: int, frame: Any) -> None:
        raise Hang(f"an input took longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def peak_memory(fn: Callable[[], Any]) -> int:
    """The peak of memory traced while ``fn`` runs (bytes); exceptions propagate."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


class Tally:
    """Counts inputs and outcomes across a test (printed at the end of a thorough run)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.counts: dict[str, int] = {}

    def add(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def report(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        return f"fuzz {self.name}: {self.total} inputs ({parts})"
