"""Fault and limit decisions: which call fails, how, and which call is turned away.

A call's fate is a pure function of (seed, endpoint, its canonical parameters, n), where
n counts the identical calls made before it. So the nth retry of a request always meets
the same fate whatever other clients do meanwhile, and a run can be replayed exactly.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from dataclasses import dataclass

# Injectable faults. HTTP statuses answer the documented error envelope; the rest are
# the ways public clients have seen TMAPI (or the network) fail.
FAULT_KINDS = (
    "417",  # HTTP 417 "failed to retrieve data, try again"
    "499",  # HTTP 499 upstream timeout
    "500",  # HTTP 500 unexpected error
    "503",  # HTTP 503 concurrency limit exceeded
    "drop",  # the connection is closed without an answer
    "truncated",  # HTTP 200, the JSON body cut in half
    "html",  # HTTP 500 with an HTML error page (a proxy in the way)
    "code",  # HTTP 200 whose body carries code 500
    "nodata",  # HTTP 200, code 200, no `data` key
    "gateway",  # HTTP 200 with a bare gateway message no document names ("An unexpected error occurred")
    "echo",  # HTTP 500 whose error text echoes the request's headers and query (the token included)
    "slow",  # a latency spike of `slow_seconds`, then the normal answer
    "huge",  # HTTP 200, a 5 MB page of 1.7 million empty items
)
# Left out unless asked for: `slow` holds a client for `slow_seconds`, `huge` sends 5 MB.
OPT_IN_FAULTS = frozenset({"slow", "huge"})
STATUS_FAULTS = frozenset({"417", "499", "500", "503"})


@dataclass(frozen=True)
class Fate:
    """What happens to one call: an extra delay in seconds and a fault kind (or None)."""

    delay: float
    fault: str | None


_UNHARMED = Fate(0.0, None)


class FaultPlan:
    """Decides each API call's delay and fault, reproducibly (see the module docstring)."""

    def __init__(
        self,
        seed: int,
        fault_rate: float,
        fault_kinds: tuple[str, ...],
        latency: float,
        jitter: float,
        slow_seconds: float,
    ) -> None:
        self.seed = seed
        self.fault_rate = fault_rate
        self.fault_kinds = fault_kinds
        self.latency = latency
        self.jitter = jitter
        self.slow_seconds = slow_seconds
        self._attempts: dict[str, int] = {}
        self.quiet = fault_rate <= 0 and latency <= 0 and jitter <= 0

    def reset(self) -> None:
        self._attempts.clear()

    def attempt(self, call_key: str) -> int:
        """How many identical calls came before this one (and count this one)."""
        n = self._attempts.get(call_key, 0)
        self._attempts[call_key] = n + 1
        return n

    def decide(self, call_key: str) -> Fate:
        """The fate of the next call identified by `call_key` (endpoint + canonical params)."""
        if self.quiet:  # every call succeeds at once: no need to count (or remember) attempts
            return _UNHARMED
        n = self.attempt(call_key)
        digest = hashlib.blake2b(f"{self.seed}\0{call_key}\0{n}".encode(), digest_size=16).digest()
        u_fault = int.from_bytes(digest[0:6], "big") / 2**48
        u_jitter = int.from_bytes(digest[6:12], "big") / 2**48
        delay = self.latency + self.jitter * u_jitter
        fault = None
        if self.fault_kinds and u_fault < self.fault_rate:
            fault = self.fault_kinds[int.from_bytes(digest[12:16], "big") % len(self.fault_kinds)]
            if fault == "slow":
                delay += self.slow_seconds
        return Fate(delay, fault)


class QpsWindow:
    """Admits at most `max_qps` calls in any sliding one-second window (0 = no limit)."""

    def __init__(self, max_qps: float) -> None:
        self.max_qps = max_qps
        self._times: deque[float] = deque()

    def admit(self, now: float | None = None) -> bool:
        if self.max_qps <= 0:
            return True
        now = time.monotonic() if now is None else now
        times = self._times
        while times and now - times[0] >= 1.0:
            times.popleft()
        if len(times) >= self.max_qps:
            return False
        times.append(now)
        return True

    def retry_in(self, now: float | None = None) -> float:
        """Seconds until the window admits a call again (0 when it would now)."""
        now = time.monotonic() if now is None else now
        times = self._times
        while times and now - times[0] >= 1.0:
            times.popleft()
        if self.max_qps <= 0 or len(times) < self.max_qps:
            return 0.0
        return times[0] + 1.0 - now  # the oldest call leaves the window

    def reset(self) -> None:
        self._times.clear()
