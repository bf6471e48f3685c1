"""The behaviours that make the crawl cheap, checked by what they do, never by time.

Real crawls against the bundled sandbox and real redis-servers; the figures themselves
(CPU per page, CPU a second, Redis commands per page, rates) are benchmarks/speed.py's.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.crawl_helpers import crawl
from tests.probes import ImportProbe, with_probe
from tests.redis_server import RedisServer
from tmapi_spiders import limits
from tmapi_spiders.limits import shared
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread


def test_the_seed_loop_holds_a_long_list_out_of_the_scheduler(tmp_path: Path) -> None:
    # 150 one-page images through 4 download slots: start() is read only when the engine
    # has room, so the scheduler never holds more than a few requests, and every image is crawled.
    urls = [f"https://cbu01.alicdn.com/img/seedloop/{i}/total-20.jpg" for i in range(150)]
    seeds = tmp_path / "images.txt"
    seeds.write_text("\n".join(urls) + "\n", encoding="utf-8")
    with SandboxThread(SandboxConfig(latency=0.02, seed=5)) as api:
        result = crawl(
            tmp_path,
            api.base_url,
            {"urls_file": str(seeds)},
            {
                "CONCURRENT_REQUESTS": 4,
                "AUTOTHROTTLE_ENABLED": False,
                "EXTENSIONS": with_probe("tests.probes.SchedulerProbe"),
            },
        )
    assert result.returncode == 0, result.stderr[-2000:]
    assert {p["query_image_url"] for p in result.products} == set(urls)
    assert len(result.products) == 150 * 20
    assert 1 <= result.stats["probe/max_scheduled"] <= 4


def test_a_single_process_crawl_imports_no_redis_and_no_openpyxl(tmp_path: Path) -> None:
    # Redis is for shared jobs only, openpyxl for workbooks: a JSON Lines crawl in one process
    # imports neither (each is a start-up cost every crawl would pay).
    seeds = tmp_path / "images.txt"
    seeds.write_text("https://cbu01.alicdn.com/img/lean/1/total-40.jpg\n", encoding="utf-8")
    with SandboxThread(SandboxConfig(seed=5)) as api:
        result = crawl(
            tmp_path,
            api.base_url,
            {"urls_file": str(seeds)},
            {"EXTENSIONS": with_probe("tests.probes.ImportProbe")},
        )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.products) == 40  # validated (the schema loads at the first record) and written
    for name in ImportProbe.WATCHED:
        assert result.stats[f"probe/imported/{name}"] == 0, name


# --- the Redis limiter: woken by a freed slot, not by polling ------------------------------------


def backends(url: str, count: int, concurrency: int, poll: float, lease: float = 30.0) -> list[shared.RedisBackend]:
    import redis

    made = []
    for i in range(count):
        client = redis.Redis.from_url(url, socket_timeout=5, decode_responses=True)  # as a worker's client
        backend = shared.RedisBackend(
            client, ("{t}:limit:slots", "{t}:limit:state", "{t}:limit:wake"), f"w{i}", concurrency, 0
        )
        backend.poll, backend.lease = poll, lease
        made.append(backend)
    return made


def test_a_worker_waiting_for_a_full_job_is_woken_by_anothers_release(redis_server: RedisServer) -> None:
    # A poll of 60 s: only the wake token can hand the slot over before the guard's 20 s.
    async def scenario() -> dict[str, int]:
        a, b = backends(redis_server.url, 2, concurrency=1, poll=60)
        held = await a.acquire()
        waiting = asyncio.ensure_future(b.acquire())
        await asyncio.sleep(0.3)
        assert not waiting.done()  # the job's one slot is taken
        await a.release(held, False)
        slot = await asyncio.wait_for(waiting, 20)
        await b.release(slot, False)
        counts = dict(b.counts)
        await a.close()
        await b.close()
        return counts

    counts = asyncio.run(scenario())
    assert counts["refused"] == 1 and counts["acquired"] == 1  # asked once, slept, asked once more


def test_a_dead_workers_slot_comes_back_by_lease_expiry_without_a_token(redis_server: RedisServer) -> None:
    # What a kill -9'd worker leaves: its holder in the zset, a lease 1 s from now (Redis
    # time), and no release, so no token. The waiter finds the slot when the lease expires,
    # at its next look: the zset of leases, not the wake list, decides.
    import redis

    raw = redis.Redis.from_url(redis_server.url)
    seconds, micros = raw.time()
    raw.zadd("{t}:limit:slots", {"dead:1": seconds + micros / 1e6 + 1.0})

    async def scenario() -> dict[str, int]:
        (alive,) = backends(redis_server.url, 1, concurrency=1, poll=0.2)
        slot = await asyncio.wait_for(alive.acquire(), 20)
        await alive.release(slot, False)
        counts = dict(alive.counts)
        await alive.close()
        return counts

    counts = asyncio.run(scenario())
    assert counts["acquired"] == 1 and counts["refused"] >= 2  # refused while the lease lived


def test_slots_are_handed_over_inside_a_worker_and_never_exceed_the_limit(redis_server: RedisServer) -> None:
    async def scenario() -> tuple[int, list[dict[str, int]]]:
        workers = backends(redis_server.url, 3, concurrency=2, poll=1.0)
        in_flight = peak = 0

        async def calls(backend: shared.RedisBackend) -> None:
            nonlocal in_flight, peak
            for _ in range(10):
                slot = await backend.acquire()
                in_flight += 1
                peak = max(peak, in_flight)
                await asyncio.sleep(0.01)
                in_flight -= 1
                await backend.release(slot, False)

        await asyncio.wait_for(asyncio.gather(*(calls(w) for w in workers for _ in range(3))), 60)
        counts = [w.counts for w in workers]
        for w in workers:
            await w.close()
        return peak, counts

    peak, counts = asyncio.run(scenario())
    assert peak == 2  # the whole limit used, never more, across three workers
    assert sum(c["handed_over"] for c in counts) > 0
    assert sum(c["acquired"] for c in counts) + sum(c["handed_over"] for c in counts) == 90
    assert all(c["acquired"] > 0 for c in counts)  # every worker got slots through Redis


def test_the_rate_limit_never_sends_more_than_the_plan_in_any_window_even_after_a_stall() -> None:
    # TMAPI_MAX_QPS=10: the schedule spaces calls 1.025/10 s apart. A loop that wakes late (here:
    # the reactor blocked for 0.35 s, as on a busy machine) must not send the overdue calls
    # together: whatever happens, no 11 calls leave within 1.025 s of each other (10 calls in
    # any 1.025 s, so 25 ms of the API's clock and the network's jitter cannot make 11 in a second).
    async def scenario() -> list[float]:
        backend = limits.LocalBackend(0, 10.0)
        sent: list[float] = []

        async def call(n: int) -> None:
            slot = await backend.acquire()  # all 40 wait at once: each has its turn in the schedule
            sent.append(time.monotonic())
            if n in (12, 25):
                time.sleep(0.35)  # the stall being simulated: the turns of the next calls pass meanwhile
            await backend.release(slot, False)

        await asyncio.gather(*(call(n) for n in range(40)))
        return sorted(sent)

    sent = asyncio.run(scenario())
    # Read just after the limiter let each call go: allow 20 ms for the reading itself on a
    # loaded machine (a burst of overdue calls after a stall would break this by ~0.35 s).
    window = 1.0 + limits.QPS_MARGIN - 0.02
    assert all(later - first >= window for first, later in zip(sent, sent[10:], strict=False))
