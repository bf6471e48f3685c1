"""Every Redis operation on one job, synchronous and short (the reactor thread or a thread calls them)."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from itertools import islice
from typing import Any

import redis

from tmapi_spiders.distributed import scripts
from tmapi_spiders.distributed.keys import JobKeys

# Seeds a PUSH_SEEDS call carries: a few hundred kB, a few milliseconds of Redis's time.
SEED_BATCH = 2000


class JobGone(Exception):
    """The job's marker vanished or was replaced under this worker: its queue, seeds and leases are lost."""

    def __init__(self, job: str, marker: str) -> None:
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
    """[n, id1..idn, name1, delta1, ...]: what POP_REQUEST acknowledges (zero deltas left out)."""
    ids = list(lease_ids)
    return [len(ids), *ids, *(part for name, value in (counters or {}).items() if value for part in (name, value))]


class Job:
    def __init__(self, server: redis.Redis, keys: JobKeys) -> None:
        self.server = server
        self.keys = keys
        self.script_keys = [getattr(keys, name) for name in scripts.KEYS]
        self.marker_id: str | None = None  # the job's marker this worker saw (None: not yet)
        # Lease ids: this process's random token and its own counter, unique across failovers.
        self._lease_prefix = f"{secrets.token_hex(4)}."
        self._lease_count = 0
        self.dupefilter_ttl = 0.0  # TMAPI_REDIS_DUPEFILTER_TTL (0: until the job is finished)
        # A script's redis-py Script, made once (EVALSHA, the script loaded when Redis lacks it).
        self._script = functools.cache(lambda lua: server.register_script(scripts.PRELUDE + lua))

    def _run(self, lua: str, *args: Any, keys: list[str] | None = None) -> Any:
        return self._script(lua)(keys=keys or self.script_keys, args=args)

    def _marked(self, lua: str, *args: Any) -> list[Any]:
        """Run a marker-checked script: the rest of its answer, or JobGone when the marker this
        worker saw is gone or replaced (the first marker seen is remembered)."""
        status, marker, *rest = self._run(lua, self.marker_id or "", *args)
        if status == "gone":
            raise JobGone(self.keys.job, marker)
        if self.marker_id is None and marker:
            self.marker_id = marker
        return rest

    def push_encoded(self, seeds: Iterable[tuple[str, str]]) -> tuple[int, int]:
        """(pushed, already there) for (fingerprint, JSON) seeds (seed_writer.SeedWriter); a seed pushed
        before is skipped. One batch is sent from a thread while the next is read and encoded."""
        pushed = total = 0
        marker = secrets.token_hex(8)  # kept if the job was seeded before
        sending: Future[Any] | None = None
        pending = iter(seeds)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seed-push") as sender:
            for batch in iter(lambda: list(islice(pending, SEED_BATCH)), []):  # SEED_BATCH at a time
                total += len(batch)
                lines = "".join(f"{fingerprint} {data}\n" for fingerprint, data in batch)
                pushed += int(sending.result()) if sending else 0
                sending = sender.submit(self._run, scripts.PUSH_SEEDS, marker, lines)
        # No seeds at all still marks the job as seeded.
        pushed += int(sending.result() if sending else self._run(scripts.PUSH_SEEDS, marker, ""))
        return pushed, total - pushed

    def pop_seeds(self, worker: str, lease: float, count: int) -> tuple[int, list[tuple[str, str]]]:
        """(work left after it, the seeds leased): "drained?" in the same round trip. Work left is 0
        only when no seed, request or lease is left; otherwise a lower bound, not the count."""
        first = self._lease_count + 1
        self._lease_count += count
        left, *flat = self._marked(scripts.POP_SEEDS, worker, lease, count, self._lease_prefix, first)
        return int(left), list(zip(flat[::2], flat[1::2], strict=True))

    def push_request_once(self, data: str, priority: int, fingerprint: str, handover: str | None = None) -> bool:
        """Queue a request unless the duplicate filter has seen `fingerprint` (False; "" skips the
        filter), and acknowledge `handover`, the lease it replaces, in the same step either way."""
        [queued] = self._marked(scripts.PUSH_REQUEST, data, -priority, handover or "", fingerprint, self.dupefilter_ttl)
        return bool(queued)

    def pop_request(
        self,
        worker: str,
        lease: float,
        done: Iterable[str] = (),
        counters: Mapping[str, int] | None = None,
    ) -> tuple[str, str] | None:
        """Pop the next request into a lease, acknowledging `done` and adding `counters` on the way."""
        self._lease_count += 1
        lease_id = f"{self._lease_prefix}{self._lease_count}"
        got = self._marked(scripts.POP_REQUEST, worker, lease, lease_id, *_ack_args(done, counters))
        return (got[0], got[1]) if got else None

    def ack(self, lease_ids: Iterable[str], counters: Mapping[str, int] | None = None) -> None:
        self._marked(scripts.POP_REQUEST, "", 0, "", *_ack_args(lease_ids, counters))  # a pop that asks for no request

    def queued(self) -> int:
        return int(self.server.zcard(self.keys.requests))

    def heartbeat(self, worker: str, lease: float, lease_ids: Iterable[str], limit: int = 1000) -> int:
        """Extend this worker's leases, mark it alive and give up to `limit` expired leases back to
        the job, in one step: how many were given back."""
        [given] = self._marked(scripts.HEARTBEAT, worker, lease, limit, *lease_ids)
        return int(given)

    def give_back(self, lease_ids: list[str]) -> int:
        return int(self._run(scripts.GIVE_BACK, *lease_ids)) if lease_ids else 0

    def work_left(self) -> int:
        status = self.status(live_seconds=0)
        return status.seeds_left + status.queued + status.in_flight

    def finish(self, worker: str, live_seconds: float, delete: bool, keep_stats: float = 0) -> int:
        """0: others still work or work is left; 1: drained, kept; 2: drained, work keys deleted."""
        args = [worker, live_seconds, "1" if delete else "0", int(keep_stats)]
        return int(self._run(scripts.FINISH, *args, keys=[*self.script_keys, *self.keys.work()]))

    def status(self, live_seconds: float) -> JobStatus:
        # One script, not a MULTI with TIME: atomic on a cluster node too (TIME has no key).
        seeds_left, seen, queued, in_flight, workers, flat = self._run(scripts.STATUS, live_seconds)
        counters = {name: int(value) for name, value in zip(flat[::2], flat[1::2], strict=True)}
        return JobStatus(self.keys.job, seeds_left, seen, queued, in_flight, sorted(workers), counters)

    def delete(self) -> int:
        """Every key of the job, ours and those other components keep under its prefix."""
        found = set(self.server.scan_iter(match=self.keys.pattern, count=500)) | set(self.keys.all())
        # One DEL per key: keys another tool put under the prefix may be in other cluster slots.
        return sum(int(self.server.delete(key)) for key in sorted(found))
