"""Call records and counters behind /_sandbox/stats and /_sandbox/calls."""

from __future__ import annotations

import time
from collections import Counter, defaultdict, deque
from typing import Any


class Recorder:
    """Call records and counters behind /_sandbox/stats and /_sandbox/calls.

    Counters are plain dicts of ints (small even after millions of calls); records are
    compact tuples in a bounded deque, rendered as JSON only when asked for.
    """

    def __init__(self, max_records: int) -> None:
        self.max_records = max_records
        self.reset()

    def reset(self) -> None:
        self.records: deque[tuple[int, float, str, tuple[tuple[str, str], ...], int | None, str | None]] = deque(
            maxlen=self.max_records or None
        )
        self.total = 0
        self.endpoints: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.by_endpoint: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.pages: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.pages_ok: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.conversions: Counter[str] = Counter()
        self.conversions_ok: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.limited: Counter[str] = Counter()
        self.in_flight = 0
        self.peak_concurrency = 0

    def record(
        self, endpoint: str, params: tuple[tuple[str, str], ...], status: int | None, fault: str | None = None
    ) -> None:
        self.total += 1
        self.records.append((self.total, time.time(), endpoint, params, status, fault))
        key = "dropped" if status is None else str(status)
        self.endpoints[endpoint] += 1
        self.statuses[key] += 1
        self.by_endpoint[endpoint][key] += 1
        if fault:
            self.faults[fault] += 1

    def stats(self, in_flight: int) -> dict[str, Any]:
        return {
            "total_calls": self.total,
            "in_flight": in_flight,
            "peak_concurrency": self.peak_concurrency,
            "endpoints": dict(self.endpoints),
            "statuses": dict(self.statuses),
            "by_endpoint": {name: dict(counts) for name, counts in self.by_endpoint.items()},
            "pages": {img: dict(pages) for img, pages in self.pages.items()},
            "pages_ok": {img: dict(pages) for img, pages in self.pages_ok.items()},
            "conversions": dict(self.conversions),
            "conversions_ok": dict(self.conversions_ok),
            "faults": dict(self.faults),
            "limited": dict(self.limited),
        }

    def calls(self, since: int = 0, limit: int | None = None) -> dict[str, Any]:
        out = []
        for seq, at, endpoint, params, status, fault in self.records:
            if seq <= since:
                continue
            out.append(
                {"seq": seq, "time": at, "endpoint": endpoint, "params": dict(params), "status": status, "fault": fault}
            )
            if limit is not None and len(out) >= limit:
                break
        return {"total_calls": self.total, "calls": out}
