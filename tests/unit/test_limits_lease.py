"""A worker stalled past its lease has lost its job-wide slot: it must not hand it over to its
next call while another worker holds it (against a real redis-server)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis

from tests.redis_server import RedisServer
from tmapi_spiders.limits.shared import RedisBackend

KEYS = ("{lease}:limit:slots", "{lease}:limit:state", "{lease}:limit:wake")


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer() as running:
        yield running


def test_a_slot_whose_lease_lapsed_is_not_handed_over(server: RedisServer) -> None:
    async def scenario() -> None:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        mine = RedisBackend(client, KEYS, "mine", 1, 0)
        other = RedisBackend(client, KEYS, "other", 1, 0)
        mine.lease, mine.poll, other.poll = 0.3, 0.5, 0.5
        first = await mine.acquire()
        time.sleep(0.6)  # this worker stalls: its lease lapses before the renewal comes
        theirs = await asyncio.wait_for(other.acquire(), 3)  # the job's one slot, now the other worker's
        waiting = asyncio.create_task(mine.acquire())  # the next call of this worker, refused by Redis
        await asyncio.sleep(0.1)
        assert not await mine.release(first, False)  # the first call ends: its slot must not serve the next
        await asyncio.sleep(0.3)
        assert not waiting.done(), "a lapsed slot served a second call while another worker held it"
        assert mine.counts["handed_over"] == 0
        await other.release(theirs, False)
        assert (await asyncio.wait_for(waiting, 3)).holder != first.holder
        await mine.close()
        await other.close()

    asyncio.run(scenario())


def test_closing_the_client_ends_a_wait_for_a_slot_at_once(server: RedisServer) -> None:
    """A worker waiting for a slot blocks in BLPOP for the whole poll; closing its client (the worker
    does so when the engine stops) must end that wait, or the process's exit waits for it."""
    keys = tuple(key.replace("{lease}", "{close}") for key in KEYS)

    async def scenario() -> None:
        client = redis.Redis.from_url(server.url, decode_responses=True, socket_timeout=60)
        mine, other = RedisBackend(client, keys, "mine", 1, 0), RedisBackend(client, keys, "other", 1, 0)
        mine.poll = 30.0
        await other.acquire()  # the job's one slot
        waiting = asyncio.create_task(mine.acquire())
        await asyncio.sleep(0.5)  # refused, so it waits on the wake list
        assert not waiting.done() and mine.counts["refused"] == 1
        await mine.close()
        await other.close()  # gives the slot back without a wake token: nothing rings the wait
        client.close()

    started = time.monotonic()
    asyncio.run(scenario())  # returns once the default executor's threads, the BLPOP's among them, end
    assert time.monotonic() - started < 10, "the wait for a slot outlived its closed client"
