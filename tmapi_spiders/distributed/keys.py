"""The Redis keys of one job, named as scrapy-redis names them where it has a name.

Every key of a job starts with the job name (TMAPI_JOB, default: the spider's name),
so one Redis can hold several jobs and `scrapy job` can find all of a job's keys. Every
key is named here, including the job-wide limiter's (limits.py).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from scrapy.settings import BaseSettings
from scrapy_redis import defaults


@dataclass(frozen=True)
class JobKeys:
    job: str
    requests: str  # zset: serialized request -> -priority (scrapy-redis PriorityQueue layout)
    dupefilter: str  # set: one fingerprint per image and query, and per later page
    seeds: str  # list: JSON seeds, popped from the left
    seeds_seen: str  # set: fingerprints of every seed pushed, so seeding twice is harmless
    inflight: str  # zset: lease id -> lease expiry (Redis server time)
    leases: str  # hash: lease id -> JSON {kind, worker, score, data}
    lease_seq: str  # counter for lease ids
    stats: str  # hash: job-wide counters (HINCRBY)
    workers: str  # zset: worker id -> last heartbeat (Redis server time)
    marker: str  # string: the job's random id, set when it is first seeded; gone = the job's state was lost
    limit_slots: str  # zset: the job-wide limiter's slot holders (limits.py)
    limit_state: str  # hash: the job-wide limiter's learned limits and schedule (limits.py)
    summary: str  # hash: query image URL -> its result as JSON, for the run summary (extensions/summary.py)
    max_calls_spent: str  # counter: paid calls against TMAPI_MAX_CALLS (spending.py)
    auth: str  # string: how the gateway takes the token ("header" or "query"), learned by TMAPI_AUTH=auto

    @classmethod
    def for_job(
        cls,
        job: str,
        queue_key: str = defaults.SCHEDULER_QUEUE_KEY,
        dupefilter_key: str = defaults.SCHEDULER_DUPEFILTER_KEY,
        start_urls_key: str = defaults.START_URLS_KEY,
    ) -> JobKeys:
        return cls(
            job=job,
            requests=queue_key % {"spider": job},
            dupefilter=dupefilter_key % {"spider": job},
            seeds=start_urls_key % {"name": job},
            seeds_seen=f"{job}:seeds_seen",
            inflight=f"{job}:inflight",
            leases=f"{job}:leases",
            lease_seq=f"{job}:lease_seq",
            stats=f"{job}:stats",
            workers=f"{job}:workers",
            marker=f"{job}:marker",
            limit_slots=f"{job}:limit:slots",
            limit_state=f"{job}:limit:state",
            summary=f"{job}:summary",
            max_calls_spent=f"{job}:max_calls_spent",
            auth=f"{job}:auth",
        )

    @classmethod
    def from_settings(cls, settings: BaseSettings, spider_name: str) -> JobKeys:
        return cls.for_job(
            job_name(settings, spider_name),
            settings.get("SCHEDULER_QUEUE_KEY") or defaults.SCHEDULER_QUEUE_KEY,
            settings.get("SCHEDULER_DUPEFILTER_KEY") or defaults.SCHEDULER_DUPEFILTER_KEY,
            settings.get("REDIS_START_URLS_KEY") or defaults.START_URLS_KEY,
        )

    def all(self) -> list[str]:
        return [getattr(self, f.name) for f in fields(self) if f.name != "job"]

    def work(self) -> list[str]:
        """Keys that hold the job's work: deleted when the job is finished (the marker stays
        as long as the stats, so a worker still running sees a finished job, not a lost one;
        the limiter, the summary and the spending count are cleared by their own components)."""
        kept = (
            self.stats,
            self.workers,
            self.marker,
            self.auth,
            self.limit_slots,
            self.limit_state,
            self.summary,
            self.max_calls_spent,
        )
        return [k for k in self.all() if k not in kept]


def job_name(settings: BaseSettings, spider_name: str) -> str:
    return str(settings.get("TMAPI_JOB") or spider_name)
