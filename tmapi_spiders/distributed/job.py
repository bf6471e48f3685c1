"""Every Redis operation on one job, synchronous and short (the reactor thread or a thread calls them)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import redis

from tmapi_spiders.api.identity import seed_fingerprint  # what one seed is: tmapi_spiders/api/identity.py
from tmapi_spiders.distributed import scripts
from tmapi_spiders.distributed.keys import JobKeys

__all__ = ["Job", "JobGone", "JobStatus", "seed_fingerprint"]

# Seeds a PUSH_SEEDS call carries: a few hundred kB, a few milliseconds of Redis's time.
SEED_BATCH = 2000


class JobGone(Exception):
    """The job's marker vanished or was replaced under this worker: its queue, seeds and leases are lost."""

    def __init__(self, job: str, marker: str) -> None:
        self.job = job
        what = "was replaced by a new one" if marker else "is gone"
        super().__init__(
            f"job {job!r} lost its state in Redis (its marker {what}: Redis restarted empty or was"
            " flushed, or the job was deleted): its queued work is lost; seed the job again"
        )


@dataclass(frozen=True)
class JobStatus:
    job: str
    seeds_left: int
    seeds_seen: int
    queued: int
    in_flight: int
    live_workers: list[str]
    counters: dict[str, int]

    @property
    def drained(self) -> bool:
        return not (self.seeds_left or self.queued or self.in_flight)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drained": self.drained}


def _ack_args(lease_ids: Iterable[str], counters: Mapping[str, int] | None) -> list[Any]:
    """[n, id1..idn, name1, delta1, ...]: what the scripts' `ack` reads (zero deltas left out)."""
    ids = list(lease_ids)
    return [len(ids), *ids, *(part for name, value in (counters or {}).items() if value for part in (name, value))]


class Job:
    def __init__(self, server: redis.Redis, keys: JobKeys) -> None:
        self.server = server
        self.keys = keys
        self.marker_id: str | None = None  # the job's marker this worker saw (None: not yet)
        # Lease ids: this process's random token and its own counter, unique across failovers.
        self._lease_prefix = f"{secrets.token_hex(4)}."
        self._lease_count = 0
        self.dupefilter_ttl = 0.0  # TMAPI_REDIS_DUPEFILTER_TTL (0: until the job is finished)
        # Seeds, requests and leases left as the last pop_seeds saw them: "drained?" without a round trip.
        self.left_after_pop = 0
        self._ack = server.register_script(scripts.ACK)
        self._pop_request = server.register_script(scripts.POP_REQUEST)
        self._push_request = server.register_script(scripts.PUSH_REQUEST)
        self._pop_seeds = server.register_script(scripts.POP_SEEDS)
        self._push_seeds = server.register_script(scripts.PUSH_SEEDS)
        self._renew = server.register_script(scripts.RENEW)
        self._heartbeat = server.register_script(scripts.HEARTBEAT)
        self._give_back = server.register_script(scripts.GIVE_BACK)
        self._drained = server.register_script(scripts.DRAINED)
        self._finish = server.register_script(scripts.FINISH)
        self._status = server.register_script(scripts.STATUS)

    # seeds

    def push_seeds(self, seeds: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
        """(pushed, already there) for JSON seeds; a seed pushed before is skipped."""
        return self.push_encoded(
            (seed_fingerprint(seed), json.dumps(seed, ensure_ascii=False, sort_keys=True)) for seed in seeds
        )

    def push_encoded(self, seeds: Iterable[tuple[str, str]]) -> tuple[int, int]:
        """`push_seeds` for (fingerprint, JSON) pairs (start.SeedWriter); one batch is sent from a
        thread while the next is read and encoded."""
        pushed = total = 0
        k = self.keys
        keys = [k.seeds, k.seeds_seen, k.stats, k.marker]
        marker = secrets.token_hex(8)  # kept if the job was seeded before
        lines: list[str] = []
        waiting: Future[Any] | None = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seed-push") as sender:
            for fingerprint, data in seeds:
                total += 1
                lines.append(f"{fingerprint} {data}\n")
                if len(lines) >= SEED_BATCH:
                    sent = sender.submit(self._push_seeds, keys=keys, args=[marker, "".join(lines)])
                    lines = []
                    if waiting is not None:
                        pushed += int(waiting.result())
                    waiting = sent
            if waiting is not None:
                pushed += int(waiting.result())
        if lines or not total:
            pushed += int(self._push_seeds(keys=keys, args=[marker, "".join(lines)]))
        return pushed, total - pushed

    def _marked(self, script: Any, keys: list[str], *args: Any) -> list[Any]:
        """Run a marker-checked script: the rest of its answer, or JobGone when the marker this
        worker saw is gone or replaced (the first marker seen is remembered)."""
        answer = script(keys=keys, args=[self.marker_id or "", *args])
        status, marker = answer[0], answer[1]
        if status == "gone":
            raise JobGone(self.keys.job, marker)
        if self.marker_id is None and marker:
            self.marker_id = marker
        return list(answer[2:])

    def marker(self) -> str | None:
        """The job's marker id now (None: never seeded, or lost)."""
        return self.server.get(self.keys.marker)

    def pop_seeds(self, worker: str, lease: float, count: int) -> list[tuple[str, str]]:
        k = self.keys
        first = self._lease_count + 1
        self._lease_count += count
        keys = [k.seeds, k.inflight, k.leases, k.marker, k.requests]
        left, *flat = self._marked(self._pop_seeds, keys, worker, lease, count, self._lease_prefix, first)
        self.left_after_pop = int(left)
        return list(zip(flat[::2], flat[1::2], strict=True))

    # requests

    def push_request(self, data: str, priority: int, handover: str | None = None) -> None:
        """Queue a request and acknowledge `handover`, the lease it replaces, in the same step."""
        self.push_request_once(data, priority, "", handover)

    def push_request_once(self, data: str, priority: int, fingerprint: str, handover: str | None = None) -> bool:
        """`push_request` unless the duplicate filter has seen `fingerprint` (False; "" skips the filter)."""
        k = self.keys
        keys = [k.requests, k.inflight, k.leases, k.dupefilter, k.marker, k.dupefilter_recent]
        [queued] = self._marked(
            self._push_request, keys, data, -priority, handover or "", fingerprint, self.dupefilter_ttl
        )
        return bool(queued)

    def pop_request(
        self,
        worker: str,
        lease: float,
        done: Iterable[str] = (),
        counters: Mapping[str, int] | None = None,
    ) -> tuple[str, str] | None:
        """Pop the next request into a lease, acknowledging `done` and adding `counters` on the way."""
        k = self.keys
        self._lease_count += 1
        lease_id = f"{self._lease_prefix}{self._lease_count}"
        keys = [k.requests, k.inflight, k.leases, k.marker, k.stats]
        got = self._marked(self._pop_request, keys, worker, lease, lease_id, *_ack_args(done, counters))
        return (got[0], got[1]) if got else None

    def ack(self, lease_ids: Iterable[str], counters: Mapping[str, int] | None = None) -> None:
        args = _ack_args(lease_ids, counters)
        if len(args) == 1:
            return
        k = self.keys
        self._marked(self._ack, [k.inflight, k.leases, k.stats, k.marker], *args)

    def queued(self) -> int:
        return int(self.server.zcard(self.keys.requests))

    # leases

    def renew(self, worker: str, lease: float, lease_ids: Iterable[str]) -> None:
        k = self.keys
        self._marked(self._renew, [k.inflight, k.workers, k.marker], worker, lease, *lease_ids)

    def heartbeat(self, worker: str, lease: float, lease_ids: Iterable[str], limit: int = 1000) -> int:
        """`renew`, and expired leases back to the job, in one step: how many were given back."""
        k = self.keys
        keys = [k.requests, k.inflight, k.leases, k.seeds, k.stats, k.workers, k.marker]
        [given] = self._marked(self._heartbeat, keys, worker, lease, limit, *lease_ids)
        return int(given)

    def give_back(self, lease_ids: Iterable[str]) -> int:
        ids = list(lease_ids)
        if not ids:
            return 0
        k = self.keys
        return int(self._give_back(keys=[k.requests, k.inflight, k.leases, k.seeds], args=ids))

    # lifecycle

    def work_left(self) -> int:
        k = self.keys
        return int(self._drained(keys=[k.seeds, k.requests, k.inflight]))

    def finish(self, worker: str, live_seconds: float, delete: bool, keep_stats: float = 0) -> int:
        """0: others still work or work is left; 1: drained, kept; 2: drained, work keys deleted."""
        k = self.keys
        return int(
            self._finish(
                keys=[k.workers, k.seeds, k.requests, k.inflight, k.stats, k.marker, *k.work()],
                args=[worker, live_seconds, "1" if delete else "0", int(keep_stats)],
            )
        )

    def status(self, live_seconds: float) -> JobStatus:
        k = self.keys
        # One script, not a MULTI with TIME: atomic on a cluster node too (TIME has no key).
        seeds_left, seen, queued, in_flight, workers, flat = self._status(
            keys=[k.seeds, k.seeds_seen, k.requests, k.inflight, k.workers, k.stats], args=[live_seconds]
        )
        counters = dict(zip(flat[::2], flat[1::2], strict=True))
        return JobStatus(
            job=k.job,
            seeds_left=int(seeds_left),
            seeds_seen=int(seen),
            queued=int(queued),
            in_flight=int(in_flight),
            live_workers=sorted(workers),
            counters={name: int(value) for name, value in counters.items()},
        )

    def delete(self) -> int:
        """Every key of the job, ours and those other components keep under its prefix."""
        found = set(self.server.scan_iter(match=self.keys.pattern, count=500)) | set(self.keys.all())
        # One DEL per key: keys another tool put under the prefix may be in other cluster slots.
        return sum(int(self.server.delete(key)) for key in sorted(found))

    def dump(self) -> dict[str, Any]:
        """Every key of the job with its value (tests, debugging)."""
        out: dict[str, Any] = {}
        for key in self.server.scan_iter(match=self.keys.pattern, count=500):
            kind = self.server.type(key)
            if kind == "string":
                out[key] = self.server.get(key)
            elif kind == "list":
                out[key] = self.server.lrange(key, 0, -1)
            elif kind == "set":
                out[key] = sorted(self.server.smembers(key))
            elif kind == "zset":
                out[key] = self.server.zrange(key, 0, -1, withscores=True)
            elif kind == "hash":
                out[key] = self.server.hgetall(key)
        return out
