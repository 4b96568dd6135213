"""Per-sender rate limiting (spec/security.md ROB-007): token buckets on an injectable clock, and the
``RATE_LIMITED`` answer a server sends in place of processing a message over the limit."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Final

from .._errors import ErrorCode, ProtocolError, RateLimited

Clock = Callable[[], float]
SYSTEM_SENDER: Final = "bus:system"
UNKNOWN_TARGET: Final = "bus:unknown"


class TokenBucket:
    """``burst`` tokens at most, refilled at ``rate`` tokens per second of ``clock`` (seconds)."""

    __slots__ = ("_clock", "_last", "burst", "rate", "tokens")

    def __init__(self, rate: float, burst: float, clock: Clock = time.monotonic) -> None:
        if not rate > 0 or not math.isfinite(rate):
            raise ValueError(f"rate must be a positive number of messages per second, got {rate!r}")
        if not burst >= 1 or not math.isfinite(burst):
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self.tokens = self.burst
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._last
        if elapsed > 0:  # a clock that goes backwards refills nothing (and is not believed)
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self._last = now

    def take(self, n: float = 1.0) -> bool:
        """Take ``n`` tokens if there are that many; False (nothing taken) otherwise."""
        self._refill()
        if self.tokens >= n:
            self.tokens -= n
            return True
        return False

    def retry_after(self, n: float = 1.0) -> float:
        """Seconds until ``n`` tokens are there (0 if they are now)."""
        self._refill()
        return max(0.0, (n - self.tokens) / self.rate)

    @property
    def full(self) -> bool:
        self._refill()
        return self.tokens >= self.burst


@dataclass(frozen=True)
class RateLimit:
    """A rate limit's configuration: ``rate`` messages per second, bursts of up to ``burst``."""

    rate: float
    burst: float | None = None  #: default: max(1, rate)

    def bucket(self, clock: Clock = time.monotonic) -> TokenBucket:
        return TokenBucket(self.rate, self.burst if self.burst is not None else max(1.0, self.rate), clock)


class RateLimiter:
    """One bucket per sender key; a sender idle long enough to have a full bucket again is forgotten
    when more than ``max_senders`` are tracked, so memory stays bounded."""

    def __init__(self, limit: RateLimit, clock: Clock = time.monotonic, *, max_senders: int = 10_000) -> None:
        self.limit = limit
        self._clock = clock
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()
        self.max_senders = max_senders
        self.allowed = 0
        self.limited = 0

    def check(self, sender: Hashable) -> float | None:
        """None when ``sender`` may send one more message now (a token is taken), else the seconds
        until it may."""
        bucket = self._buckets.get(sender)
        if bucket is None:
            bucket = self._buckets[sender] = self.limit.bucket(self._clock)
            self._evict()
        else:
            self._buckets.move_to_end(sender)
        if bucket.take():
            self.allowed += 1
            return None
        self.limited += 1
        return bucket.retry_after()

    def forget(self, sender: Hashable) -> None:
        self._buckets.pop(sender, None)

    def _evict(self) -> None:
        while len(self._buckets) > self.max_senders:
            key, bucket = next(iter(self._buckets.items()))
            if not bucket.full:
                break  # the oldest is still limited: keep it (bounded by max_senders + 1 misses)
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


def rate_limited_error(retry_after: float) -> ProtocolError:
    return RateLimited(
        f"rate limit exceeded: retry in {retry_after * 1000:.0f} ms",
        retry_after_ms=max(1, math.ceil(retry_after * 1000)),
    )


def rate_limited_reply(frame: bytes, codec: str, retry_after: float) -> bytes:
    """The encoded ``Error`` message that answers a message over the limit (ROB-007): from
    ``bus:system`` to the message's source, ``correlation_id`` = its id, the error's wire form as
    payload. A frame that does not decode gets ``correlation_id`` null and target ``bus:unknown``."""
    from .. import MessageType, decode, encode, new_message
    from .._codec import Codec

    c: Codec = "msgpack" if codec == "msgpack" else "json"
    correlation: str | None = None
    target = UNKNOWN_TARGET
    try:
        msg = decode(frame, c)
    except ProtocolError:
        pass
    else:
        correlation, target = str(msg.header.id), msg.header.source
    reply = new_message(
        MessageType.ERROR,
        SYSTEM_SENDER,
        target,
        rate_limited_error(retry_after).to_dict(),
        correlation_id=correlation,
    )
    return encode(reply, c)


__all__ = [
    "RateLimit",
    "RateLimiter",
    "TokenBucket",
    "rate_limited_error",
    "rate_limited_reply",
    "ErrorCode",
]
