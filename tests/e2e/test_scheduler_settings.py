"""The job's scheduler is not scrapy-redis's: the scrapy-redis settings it would ignore are refused.

It used to subclass scrapy_redis.scheduler.Scheduler while overriding every method, so
SCHEDULER_QUEUE_CLASS, SCHEDULER_SERIALIZER, SCHEDULER_FLUSH_ON_START and
SCHEDULER_IDLE_BEFORE_CLOSE were accepted and silently did nothing.
"""

from __future__ import annotations

import pytest
from scrapy.core.scheduler import BaseScheduler
from scrapy.settings import Settings
from scrapy_redis.scheduler import Scheduler as RedisScheduler

from tests.crawl_helpers import run_scrapy, scrapy_env
from tmapi_spiders.distributed import DUPEFILTER
from tmapi_spiders.distributed.scheduler import LeasingScheduler, refused_setting


@pytest.mark.parametrize(
    ("name", "value", "instead"),
    [
        ("SCHEDULER_QUEUE_CLASS", "scrapy_redis.queue.FifoQueue", "always a priority queue"),
        ("SCHEDULER_SERIALIZER", "scrapy_redis.picklecompat", "always JSON"),
        ("SCHEDULER_FLUSH_ON_START", "true", "scrapy job --delete"),
        ("SCHEDULER_IDLE_BEFORE_CLOSE", "5", "MAX_IDLE_TIME_BEFORE_CLOSE"),
        ("SCHEDULER_DUPEFILTER_CLASS", "scrapy_redis.dupefilter.RFPDupeFilter", "ImageDupeFilter"),
    ],
)
def test_a_scrapy_redis_setting_the_scheduler_ignores_is_refused_saying_what_to_do(
    name: str, value: str, instead: str
) -> None:
    problem = refused_setting(Settings({name: value}))
    assert problem is not None and problem.startswith(f"{name}={value!r} is not supported") and instead in problem


def test_what_the_scheduler_does_anyway_and_scrapys_defaults_pass() -> None:
    assert refused_setting(Settings()) is None  # Scrapy's own DUPEFILTER_CLASS: configure() replaces it
    accepted = {
        "SCHEDULER_QUEUE_CLASS": "scrapy_redis.queue.PriorityQueue",
        "SCHEDULER_FLUSH_ON_START": "false",
        "SCHEDULER_IDLE_BEFORE_CLOSE": 0,
        "DUPEFILTER_CLASS": DUPEFILTER,
    }
    assert refused_setting(Settings(accepted)) is None
    chosen = Settings()
    chosen.set("DUPEFILTER_CLASS", "scrapy.dupefilters.RFPDupeFilter", priority="cmdline")  # -s: would be ignored
    assert "DUPEFILTER_CLASS" in (refused_setting(chosen) or "")
    by_spider = Settings()
    by_spider.set("DUPEFILTER_CLASS", "scrapy.dupefilters.RFPDupeFilter", priority="spider")  # above configure()'s
    assert "DUPEFILTER_CLASS" in (refused_setting(by_spider) or "")
    assert issubclass(LeasingScheduler, BaseScheduler) and not issubclass(LeasingScheduler, RedisScheduler)


def test_scrapy_crawl_refuses_it_in_one_line_before_starting() -> None:
    args = ["crawl", "image_search", "-s", "REDIS_URL=redis://127.0.0.1:1/0", "-s", "SCHEDULER_SERIALIZER=json"]
    done = run_scrapy(args, scrapy_env("http://127.0.0.1:9"), timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "error: SCHEDULER_SERIALIZER='json' is not supported by the distributed scheduler:"
        " queued requests are always JSON (Request.to_dict), never pickle"
    ]
