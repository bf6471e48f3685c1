"""A worker pops only what it can start soon: the job-wide limiter's `has_room`
against a real redis-server, and `Room`, which the scheduler asks before each pop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis

from tests.redis_server import RedisServer
from tmapi_spiders.distributed.room import Room
from tmapi_spiders.limits.shared import RedisBackend

KEYS = ("{room}:limit:slots", "{room}:limit:state", "{room}:limit:wake")


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer() as running:
        yield running


def backend(server: RedisServer, worker: str, concurrency: int) -> RedisBackend:
    made = RedisBackend(redis.Redis.from_url(server.url, decode_responses=True), KEYS, worker, concurrency, 0)
    made.poll = 2.0
    return made


def test_room_closes_while_a_request_waits_for_a_slot_and_opens_when_it_takes_one(server: RedisServer) -> None:
    async def scenario() -> None:
        mine, other = backend(server, "mine", 1), backend(server, "other", 1)
        wakes: list[str] = []
        room = Room(lambda: wakes.append("wake"))
        room.limiter = mine.has_room
        mine.on_room = room.wake
        assert room.may_pop()  # nothing waits and no slot is held: one request may come
        room.popped()
        assert not room.may_pop()  # the popped request has not reached the limiter yet
        await asyncio.sleep(0)
        assert room.may_pop() and wakes == ["wake"]  # a turn later the engine is asked again

        first = await mine.acquire()  # the job's one slot; a request taking a slot wakes the engine
        assert len(wakes) == 2 and room.may_pop()  # one slot held, none waiting: the next call of a hand-over may come
        second = asyncio.create_task(mine.acquire())
        await asyncio.sleep(0.05)
        assert not second.done() and not room.may_pop()  # it waits for the slot: pop nothing more

        assert not await mine.release(first, False)  # handed over in-process to the waiting request
        slot = await asyncio.wait_for(second, 1)
        assert slot.holder == first.holder and len(wakes) == 3 and room.may_pop()

        # Another worker asks while the slot is taken: refused, it has no room and waits (BLPOP).
        theirs = asyncio.create_task(other.acquire())
        await asyncio.sleep(0.1)
        assert not theirs.done() and not other.has_room() and other.counts["refused"] == 1
        await mine.release(slot, False)  # nothing of ours waits: back to Redis, with a wake token
        assert (await asyncio.wait_for(theirs, 1)).holder.startswith("other:")
        assert other.has_room()
        await mine.close()
        await other.close()

    asyncio.run(scenario())


def test_without_a_limiter_every_pop_is_allowed() -> None:
    room = Room(lambda: None)
    room.popped()  # no event loop needed: nothing is scheduled
    assert room.may_pop()


def test_a_pop_waits_for_an_answered_page_to_be_written_at_most_the_ack_delay() -> None:
    """With the job-wide limit in Redis, Scrapy asks for the next request as an answer arrives,
    before its page is written: the pop waits for that page (its ack then rides on the pop), for
    TMAPI_REDIS_ACK_MAX_DELAY at the longest, and the engine is woken when that time is up. A
    worker whose pops come closer together than that does not wait: the next pop takes the ack."""

    async def scenario() -> None:
        wakes: list[float] = []
        room = Room(lambda: wakes.append(time.monotonic()))
        room.limiter = lambda: True
        room.ack_wait = 0.2
        room.answered("a")
        assert not room.may_pop()  # its page is being read and written
        room.done("a")
        assert room.may_pop()  # written: the pop now acknowledges it
        room.popped()
        await asyncio.sleep(0)  # the popped request reached the limiter
        assert room.may_pop() and len(wakes) == 1
        room.answered("b")
        assert room.may_pop()  # popped just now: the next pop comes soon enough to take b's ack

        await asyncio.sleep(0.2)
        room.answered("c")
        asked = time.monotonic()
        assert not room.may_pop()  # the last pop was a while ago: this one waits for c
        await asyncio.sleep(0.1)
        assert not room.may_pop() and len(wakes) == 1  # still within the delay: one timer, not one per ask
        await asyncio.sleep(0.15)
        assert len(wakes) == 2 and wakes[-1] - asked >= 0.19  # woken once the delay is up
        assert room.may_pop()  # not written in time: the pop goes, the ack loop acknowledges it as before

        room.popped()
        await asyncio.sleep(0.2)
        room.answered("d")
        room.answered("e")
        room.done("d")
        assert room.may_pop()  # one page written is enough: its ack rides, e's goes with a later pop
        room.popped()
        await asyncio.sleep(0.2)
        room.forget("e")  # a retry queued in its place acknowledged it: nothing to wait for
        assert room.may_pop()

    asyncio.run(scenario())


def test_without_the_limit_in_redis_a_pop_never_waits_for_an_answered_page() -> None:
    room = Room(lambda: None)
    room.limiter = lambda: True  # a local limiter (no plan limit): ack_wait stays 0
    room.answered("a")
    assert room.may_pop()
