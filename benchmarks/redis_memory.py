"""Redis memory per queued seed, queued request, dupefilter entry and finished image.

Starts a private redis-server (the tests' helper: its own free port, no persistence),
seeds N images (default 1,000,000) through the project's own `Job.push_encoded` (what
`scrapy seed` calls, 500 seeds a script call) and times it, then measures with INFO
memory (used_memory deltas) and MEMORY USAGE:

- a queued seed: the seeds list plus the seen-set that makes seeding twice harmless;
- a queued request: real request JSON (the spider's own first request, serialized as
  the scheduler does), page 1 and a page 5 carrying the ids of the 80 items seen before;
- a dupefilter entry: one SHA-1 fingerprint in the job's duplicate filter;
- a finished image: what stays in Redis after its work is done until the job is finished
  (its seen-set entry, its dupefilter fingerprints, its summary entry).

Prints a Markdown table and the arithmetic for a 10-million-image job. Usage:

    .venv/bin/python benchmarks/redis_memory.py [--seeds 1000000] [--requests 100000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.redis_server import RedisServer
from tests.seeds import push_json, seed_json
from tmapi_spiders.api.contract import SearchQuery
from tmapi_spiders.distributed.job import Job
from tmapi_spiders.distributed.keys import JobKeys

PAGES_PER_IMAGE = 5  # a typical image: 100 offers at 20 a page


def image_url(i: int) -> str:
    return f"https://cbu01.alicdn.com/img/ibank/O1CN01{i:012d}Lnbnos2LkORt_!!{3367999730 + i}-0-cib.jpg"


def request_json(url: str, page: int = 1) -> str:
    """The scheduler's JSON for this image's search page: the spider's own request."""
    from scrapy.utils.project import get_project_settings
    from scrapy.utils.reactor import install_reactor
    from scrapy.utils.test import get_crawler

    from tmapi_spiders.crawl.seeds import Seed
    from tmapi_spiders.distributed import scheduler as serializer
    from tmapi_spiders.spiders.image_search import ImageSearchSpider

    global _spider
    if _spider is None:
        install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
        values = dict(get_project_settings().items())
        values.update(TMAPI_API_TOKEN="x" * 24, TMAPI_BASE_URL="https://api.tmapi.io", REDIS_URL="redis://127.0.0.1:1")
        _spider = ImageSearchSpider.from_crawler(get_crawler(ImageSearchSpider, values))
    request = _spider.first_request(Seed(url, 0), SearchQuery(), 0)
    if page > 1:  # a later page carries the ids of the items seen before it
        state = request.meta["tmapi"]
        state.update(page=page, total=100, items=20 * (page - 1))
        state["seen"] = [600000000000 + n for n in range(20 * (page - 1))]
        request = request.replace(url=request.url.replace("page=1", f"page={page}"), dont_filter=True)
    return serializer.to_json(request, _spider)


_spider: Any = None


def used(client: Any) -> int:
    return int(client.info("memory")["used_memory"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100_000)
    opts = parser.parse_args()
    rows: list[tuple[str, float, str]] = []
    with RedisServer() as server:
        client = server.client()
        keys = JobKeys.for_job("memory")
        job = Job(client, keys)
        base = used(client)
        seeds = (seed_json(image_url(i), SearchQuery(), 0) for i in range(opts.seeds))
        started = time.perf_counter()
        pushed, _ = push_json(job, seeds)
        seconds = time.perf_counter() - started
        assert pushed == opts.seeds
        after_seeds = used(client)
        seed_list = int(client.memory_usage(keys.seeds, samples=0) or 0)
        seen_set = int(client.memory_usage(keys.seeds_seen, samples=0) or 0)
        seed_bytes = len(json.dumps(seed_json(image_url(1), SearchQuery(), 0), sort_keys=True))
        rows.append(("queued seed (list entry + seen-set entry)", (after_seeds - base) / opts.seeds, "used_memory"))
        rows.append(("  of which the seeds list", seed_list / opts.seeds, f"MEMORY USAGE; JSON {seed_bytes} B"))
        rows.append(("  of which the seen-set", seen_set / opts.seeds, "MEMORY USAGE; 40-hex SHA-1"))

        for page in (1, 5):
            before = used(client)
            sample = request_json(image_url(0), page)
            pipe = client.pipeline(transaction=False)
            for i in range(opts.requests):
                pipe.zadd(keys.requests + f":p{page}", {sample.replace("O1CN01000000000000", f"O1CN01{i:012d}"): -i})
                if i % 5000 == 4999:
                    pipe.execute()
            pipe.execute()
            rows.append(
                (f"queued request, page {page}", (used(client) - before) / opts.requests, f"JSON {len(sample)} B")
            )

        before = used(client)
        pipe = client.pipeline(transaction=False)
        for i in range(opts.requests * PAGES_PER_IMAGE):
            pipe.sadd(keys.dupefilter, hashlib.sha1(str(i).encode()).hexdigest())
            if i % 5000 == 4999:
                pipe.execute()
        pipe.execute()
        per_fp = (used(client) - before) / (opts.requests * PAGES_PER_IMAGE)
        rows.append(("dupefilter entry", per_fp, "used_memory; 40-hex SHA-1"))

        before = used(client)
        pipe = client.pipeline(transaction=False)
        for i in range(opts.requests):
            pipe.zadd(keys.dupefilter_recent, {hashlib.sha1(str(i).encode()).hexdigest(): 1_764_700_000.123456 + i})
            if i % 5000 == 4999:
                pipe.execute()
        pipe.execute()
        per_recent = (used(client) - before) / opts.requests
        rows.append(("dupefilter entry with TMAPI_REDIS_DUPEFILTER_TTL", per_recent, "used_memory; zset by time"))

        before = used(client)
        summary = {
            "query_image_url": image_url(0),
            "status": "done",
            "pages": PAGES_PER_IMAGE,
            "items": 100,
            "paid_calls": PAGES_PER_IMAGE,
            "failure": None,
        }
        pipe = client.pipeline(transaction=False)
        for i in range(opts.requests):
            entry = dict(summary, query_image_url=image_url(i))
            pipe.hset(keys.summary, image_url(i), json.dumps(entry, ensure_ascii=False))
            if i % 5000 == 4999:
                pipe.execute()
        pipe.execute()
        per_summary = (used(client) - before) / opts.requests
        rows.append(("summary entry of a finished image", per_summary, "used_memory"))
        seen_per = seen_set / opts.seeds
        finished = seen_per + per_fp * PAGES_PER_IMAGE + per_summary
        rows.append(
            (f"finished image ({PAGES_PER_IMAGE} pages)", finished, "seen-set + 5 fingerprints + summary entry")
        )
        peak = int(client.info("memory")["used_memory_peak"])
    print(f"Seeded {opts.seeds:,} seeds in {seconds:.1f} s: {opts.seeds / seconds:,.0f} lines/s (Job.push_encoded)")
    print(f"Redis used_memory peak {peak / 2**20:,.0f} MiB\n")
    print("| what | bytes each | measured by |")
    print("| --- | ---: | --- |")
    for name, value, how in rows:
        print(f"| {name} | {value:,.0f} | {how} |")
    per_seed = rows[0][1]
    images = 10_000_000
    print(f"\nA {images:,}-image job ({PAGES_PER_IMAGE} pages each), seeded at once:")
    print(f"- at the start: {images:,} x {per_seed:,.0f} B = {images * per_seed / 2**30:,.2f} GiB of queued seeds")
    print(
        f"- at the end, before the job is finished: {images:,} x {finished:,.0f} B ="
        f" {images * finished / 2**30:,.2f} GiB (seen-set, dupefilter, summary)"
    )
    print(
        f"  of which the dupefilter: {images * PAGES_PER_IMAGE:,} x {per_fp:,.0f} B ="
        f" {images * PAGES_PER_IMAGE * per_fp / 2**30:,.2f} GiB"
    )
    print("- queued requests stay near the workers' concurrency (a page asks for the next): negligible")
    rate = 100  # pages a second for the whole job, a generous plan
    ttl = 24 * 3600
    print(
        f"- with TMAPI_REDIS_DUPEFILTER_TTL={ttl} at {rate} pages/s the filter holds at most {rate * ttl:,} entries"
        f" x {per_recent:,.0f} B = {rate * ttl * per_recent / 2**30:,.2f} GiB, whatever the job's size"
    )


if __name__ == "__main__":
    main()
