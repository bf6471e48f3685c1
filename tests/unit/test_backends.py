"""tmapi_spiders/jobs/backends.py: one place gives each feature its local or Redis backend."""

from __future__ import annotations

import asyncio
import json

import pytest
from scrapy.spiders import Spider
from scrapy.utils.test import get_crawler

from tests.redis_server import RedisServer
from tests.seeds import push_json
from tmapi_spiders import registry
from tmapi_spiders.distributed.backends import RedisBackends
from tmapi_spiders.distributed.job import Job
from tmapi_spiders.jobs import backends
from tmapi_spiders.jobs.backends import LocalCounter, LocalResults
from tmapi_spiders.limits import LocalBackend
from tmapi_spiders.limits.shared import RedisBackend


class Unit(Spider):
    name = "unit-backends"


def test_one_process_gets_local_backends() -> None:
    chosen = backends.for_crawler(get_crawler(Unit, {}))
    assert not isinstance(chosen, RedisBackends)
    assert isinstance(chosen.image_results(), LocalResults)
    assert isinstance(chosen.call_counter(3), LocalCounter)
    assert isinstance(chosen.limiter(3, 0), LocalBackend)
    assert not any(b.shared for b in (chosen.image_results(), chosen.call_counter(3)))


@pytest.mark.parametrize("setting", ["REDIS_URL", "REDIS_SENTINELS"])
def test_a_worker_of_a_shared_job_gets_the_jobs_backends(setting: str) -> None:
    value = "redis://127.0.0.1:1/0" if setting == "REDIS_URL" else "127.0.0.1:1"
    settings = {
        **registry.defaults(),  # the worker the limiter wires to reads the project's defaults
        setting: value,
        "REDIS_SENTINEL_MASTER": "m",
        "TMAPI_JOB": "j",
        "TMAPI_WORKER_ID": "w",
    }
    chosen = backends.for_crawler(get_crawler(Unit, settings))
    assert isinstance(chosen, RedisBackends)
    assert chosen.worker.keys.job == "j"
    assert isinstance(chosen.limiter(3, 0), RedisBackend)  # the limiter too, with sentinels alone
    assert chosen.worker.room.ack_wait == chosen.worker.ack_max_delay > 0  # a pop may wait to acknowledge a page
    # No limit set: nothing to share, each worker finds its own rate; once it paces, its room says
    # when it may pop, and each paced call that leaves wakes it.
    own = chosen.limiter(0, 0)
    assert isinstance(own, LocalBackend)
    assert chosen.worker.room.limiter == own.has_room and own.on_room == chosen.worker.wake
    assert chosen.worker.room.ack_wait == 0  # pops not spaced by a job-wide limit never wait


def test_the_jobs_results_and_counter_live_under_the_jobs_keys(redis_server: RedisServer) -> None:
    crawler = get_crawler(Unit, {"REDIS_URL": redis_server.url, "TMAPI_JOB": "unit-backends"})
    chosen = backends.for_crawler(crawler)
    client = redis_server.client()
    push_json(Job(client, chosen.worker.keys), [{"url": "https://a.com/x.jpg"}])  # the job exists (its marker)
    results, counter = chosen.image_results(), chosen.call_counter(2)
    assert results.shared and counter.shared and results.job_name == "unit-backends"
    assert [asyncio.run(counter.reserve()) for _ in range(3)] == [1, 2, 0]  # the cap holds job-wide
    assert int(client.get(chosen.worker.keys.max_calls_spent) or 0) == 2
    image = {"query_image_url": "https://a.com/x.jpg", "status": "done"}
    results.add(image)
    assert results.mine() == [image]
    assert [json.loads(v) for v in client.hvals(chosen.worker.keys.summary)] == [image]
    assert asyncio.run(results.all()) == [image]
