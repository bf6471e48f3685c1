"""The Redis keys of one job, named as scrapy-redis names them where it has a name.

Every key starts with `{<job>}:` (TMAPI_JOB, default: the spider's name), a Redis Cluster hash
tag, so a job's scripts work on a cluster. Jobs created before the hash tags have keys named
`<job>:...`: `legacy_keys` finds them and `scrapy job --migrate` renames them once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

from redis.crc import key_slot
from scrapy.settings import BaseSettings
from scrapy_redis import defaults

from tmapi_spiders import registry

# Characters special in a Redis glob pattern (SCAN MATCH, KEYS): escaped in a job's prefix.
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")

# scrapy-redis's key settings: (setting, its default, its placeholder, the JobKeys field it names).
KEY_SETTINGS = (
    ("SCHEDULER_QUEUE_KEY", defaults.SCHEDULER_QUEUE_KEY, "spider", "requests"),
    ("SCHEDULER_DUPEFILTER_KEY", defaults.SCHEDULER_DUPEFILTER_KEY, "spider", "dupefilter"),
    ("REDIS_START_URLS_KEY", defaults.START_URLS_KEY, "name", "seeds"),
)


@dataclass(frozen=True)
class JobKeys:
    job: str
    requests: str  # zset: serialized request -> -priority (scrapy-redis PriorityQueue layout)
    dupefilter: str  # set: one fingerprint per image and query, and per later page
    dupefilter_recent: str  # zset: the same, scored by when added, with TMAPI_REDIS_DUPEFILTER_TTL
    seeds: str  # list: JSON seeds, popped from the left
    seeds_seen: str  # set: fingerprints of every seed pushed, so seeding twice is harmless
    inflight: str  # zset: lease id -> lease expiry (Redis server time)
    leases: str  # hash: lease id -> JSON {kind, worker, score, data}
    lease_seq: str  # counter for lease ids of jobs before worker-made ids: only deleted now
    # `work()` is the keys above; below, the job's bookkeeping and other components' keys:
    stats: str  # hash: job-wide counters (HINCRBY)
    workers: str  # zset: worker id -> last heartbeat (Redis server time)
    marker: str  # string: the job's random id, set when it is first seeded; gone = the job's state was lost
    limit_slots: str  # zset: the job-wide limiter's slot holders (limits/)
    limit_state: str  # hash: the job-wide limiter's learned limits and schedule (limits/)
    limit_wake: str  # list: one token per freed slot, for a worker waiting in BLPOP (limits/)
    summary: str  # hash: query image URL -> its result as JSON, for the run summary (extensions/summary.py)
    max_calls_spent: str  # counter: paid calls against TMAPI_MAX_CALLS (spending.py)
    auth: str  # string: how the gateway takes the token ("header" or "query"), learned by TMAPI_AUTH=auto

    @classmethod
    def for_job(cls, job: str, settings: BaseSettings | None = None) -> JobKeys:
        """The job's keys under `{job}:`, named by scrapy-redis's key settings (default: its names)."""
        given = settings or BaseSettings()
        prefix = f"{{{job}}}"
        own = {f.name: f"{prefix}:{f.name.replace('limit_', 'limit:')}" for f in fields(cls)}
        for setting, default, placeholder, name in KEY_SETTINGS:
            own[name] = str(given.get(setting) or default) % {placeholder: prefix}
        own.update(job=job, dupefilter_recent=own["dupefilter"] + ":recent")
        return cls(**own)

    @property
    def prefix(self) -> str:
        """What every key of the job starts with (the job's own, from `stats`)."""
        return self.stats[: -len("stats")]

    @property
    def pattern(self) -> str:
        """A SCAN MATCH pattern for every key under the job's prefix (glob characters escaped)."""
        return _GLOB_SPECIAL.sub(r"\\\1", self.prefix) + "*"

    def check_one_slot(self) -> None:
        """ValueError naming the setting whose key leaves the job's hash slot (CROSSSLOT on a cluster)."""
        for setting, _, placeholder, name in KEY_SETTINGS:
            key = getattr(self, name)
            if key_slot(key.encode()) != key_slot(self.stats.encode()):
                raise ValueError(
                    f"{setting} must contain %({placeholder})s (it becomes the job's {{hash tag}}), got {key!r}:"
                    " a job's keys must share one hash slot"
                )

    @classmethod
    def from_settings(cls, settings: BaseSettings, spider_name: str) -> JobKeys:
        return cls.for_job(str(registry.read(settings, "TMAPI_JOB") or spider_name), settings)

    def untagged(self) -> JobKeys:
        """The same keys under the names used before the hash tags (`<job>:requests`...)."""
        tag = f"{{{self.job}}}"
        return JobKeys(**{f.name: getattr(self, f.name).replace(tag, self.job, 1) for f in fields(self)})

    def all(self) -> list[str]:
        return [getattr(self, f.name) for f in fields(self) if f.name != "job"]

    def work(self) -> list[str]:
        """Keys deleted when the job is finished; the marker stays with the stats (a running worker
        sees a finished job, not a lost one), and other components clear their own keys."""
        keys = self.all()
        return keys[: keys.index(self.stats)]


def legacy_keys(server: Any, keys: JobKeys) -> list[str]:
    """The job's keys under the old names, when it has none under the new ones (a job a new
    worker would see as empty): EXISTS on named keys only, one round trip for a running job."""
    if server.exists(keys.marker, keys.stats):
        return []
    return [key for key in keys.untagged().all() if server.exists(key)]


def legacy_message(keys: JobKeys, found: list[str]) -> str:
    """The one line a worker, `scrapy seed` and `scrapy job` print for an old-named job."""
    return (
        f"job {keys.job!r} was created with the old key names ({found[0]}...), before the"
        f" {{hash tag}} names ({keys.prefix}...): stop its workers and run `scrapy job --migrate"
        f" -s TMAPI_JOB={keys.job}` once with the same REDIS_URL"
    )
