"""The distributed end-to-end tests again, against managed-Redis shapes: a real
3-master Redis Cluster, a TLS-only redis-server asking for client certificates, and a
Sentinel-watched master with its replica; then failovers while workers run.

The tests of test_distributed.py (exactly-once, kill -9, resume), test_limits.py (a shared
limit, a killed worker's slots) and test_spending.py (the job-wide cap) are imported here and
run with this module's `redis_server` fixture, which is each shape in turn: their workers get
only a REDIS_URL (`redis+cluster://`, `rediss://...?ssl_ca_certs=...`, `redis+sentinel://`),
so the same code paths a user's `-s REDIS_URL=...` takes are the ones tested.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.crc import key_slot

import tests.e2e.test_distributed as dist
import tests.e2e.test_limits as limits
import tests.e2e.test_spending as spending
from tests.e2e.test_distributed import IMAGES, Cluster, Key, key_of, paid_pages, push_seeds, wait_until
from tests.redis_server import RedisCluster, SentinelPair, TlsRedisServer, tls_supported
from tests.seeds import push_json
from tmapi_spiders.distributed.job import Job
from tmapi_spiders.distributed.keys import JobKeys
from tmapi_spiders.sandbox import SandboxThread

pytestmark = pytest.mark.slow

# The fixtures and tests of the other modules, collected here again: pytest resolves their
# `redis_server` to this module's, which is each managed-Redis shape in turn.
sandbox = dist.sandbox
seeds_file = dist.seeds_file
single = dist.single
reference = dist.reference
reference_calls = dist.reference_calls
seeds = limits.seeds
slow_api = limits.slow_api
test_three_workers_pay_each_page_once_and_find_what_one_process_finds = (
    dist.test_three_workers_pay_each_page_once_and_find_what_one_process_finds
)
test_kill_9_of_a_worker_loses_nothing = dist.test_kill_9_of_a_worker_loses_nothing
test_stop_all_workers_and_resume_pays_nothing_twice_and_keeps_no_token_in_redis = (
    dist.test_stop_all_workers_and_resume_pays_nothing_twice_and_keeps_no_token_in_redis
)
test_three_workers_share_one_limit_through_redis = limits.test_three_workers_share_one_limit_through_redis
test_a_killed_workers_slots_come_back_and_the_limit_still_holds = (
    limits.test_a_killed_workers_slots_come_back_and_the_limit_still_holds
)
test_distributed_cap_is_job_wide_and_leaves_the_rest_queued = (
    spending.test_distributed_cap_is_job_wide_and_leaves_the_rest_queued
)

SHAPES = ("cluster", "tls", "sentinel")


def start_shape(shape: str) -> Any:
    if shape == "cluster":
        return RedisCluster(masters=3).start()
    if shape == "tls":
        why = tls_supported()
        if why:
            pytest.skip(f"TLS redis-server needed: {why}")
        return TlsRedisServer().start()
    return SentinelPair().start()


@pytest.fixture(scope="module", params=SHAPES)
def redis_server(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Each managed-Redis shape in turn, with `.url` and `.client()` like RedisServer."""
    server = start_shape(request.param)
    try:
        yield server
    finally:
        server.close()


def test_every_key_of_a_job_is_in_one_slot_of_the_cluster(redis_server: Any) -> None:
    """On a cluster, the job's keys all hash to one slot (else its scripts fail with CROSSSLOT)."""
    keys = JobKeys.for_job("one-slot")
    slots = {key_slot(key.encode()) for key in keys.all()}
    assert len(slots) == 1
    job = Job(redis_server.client(), keys)
    assert push_json(job, [{"url": IMAGES[0], "max_pages": 1}]) == (1, 0)
    _, [(lease, _)] = job.pop_seeds("w", 30, 5)
    job.ack([lease], {"pages": 1})
    assert job.status(30).counters == {"seeds_pushed": 1, "pages": 1}
    assert job.delete() >= 3


# --- failovers while workers run ---------------------------------------------------------------


def run_with_failover(
    tmp_path: Path, url: str, sandbox: SandboxThread, seeds_file: Path, job_name: str, client: Any, failover: Any
) -> tuple[list[int], Cluster]:
    cluster = Cluster(tmp_path, url, sandbox.base_url, job_name)
    job = Job(client, JobKeys.for_job(job_name))
    push_seeds(job)
    sandbox.reset()
    cluster.start(extra={"TMAPI_REDIS_RETRY_TIMES": "8", "TMAPI_REDIS_RETRY_DELAY": "0.3"})

    def under_way() -> bool:  # every worker has joined the job (read its marker) and pages are done
        status = job.status(2)
        return len(status.live_workers) == 3 and status.counters.get("pages", 0) >= 6

    wait_until(under_way, what="3 workers joined and 6 pages done")
    failover()
    return cluster.wait(120), cluster


def test_a_sentinel_failover_mid_crawl_loses_nothing(
    tmp_path: Path,
    sandbox: SandboxThread,
    seeds_file: Path,
    reference: set[Key],
    reference_calls: Counter[tuple[str, str]],
) -> None:
    """The master dies (kill -9) while 3 workers run and the sentinel promotes the replica:
    the workers find the new master through the sentinel (redis-py's Sentinel client) and
    every image is searched."""
    with SentinelPair() as pair:
        codes, cluster = run_with_failover(
            tmp_path, pair.url, sandbox, seeds_file, "sentinel-failover", pair.client(), pair.failover
        )
        status = Job(pair.client(), JobKeys.for_job("sentinel-failover")).status(2)
    log = cluster.log_text()
    assert codes == [0, 0, 0], log[-3000:]
    assert {key_of(p) for p in cluster.products()} == reference
    paid = paid_pages(sandbox)
    assert set(paid) == set(reference_calls)  # every call made; a few may be made twice around the switch
    assert status.drained and "Traceback" not in log
    assert "Lost Redis" in log and "Redis is back" in log  # the master died; the sentinel named the new one


def test_a_stale_replica_promoted_by_sentinel_stops_the_workers_with_exit_6(
    tmp_path: Path, sandbox: SandboxThread, seeds_file: Path
) -> None:
    """The replica lost the job (flushed while the master ran on): once promoted, the job's
    marker is missing there, and the workers stop with exit 6 instead of calling the job done."""
    with SentinelPair() as pair:
        replica = pair.node(pair.replica_port())

        def stale_failover() -> None:
            pair.synced()  # the replica holds the job (its marker) before it loses it
            replica.config_set("replica-read-only", "no")
            replica.flushall()  # the replica's copy is lost; later writes still reach it
            pair.failover()

        codes, cluster = run_with_failover(
            tmp_path, pair.url, sandbox, seeds_file, "stale-replica", pair.client(), stale_failover
        )
    log = cluster.log_text()
    assert codes == [6, 6, 6], log[-3000:]
    assert "lost its state in Redis" in log and "is finished" not in log


def test_a_cluster_master_failover_mid_crawl_loses_nothing(
    tmp_path: Path,
    sandbox: SandboxThread,
    seeds_file: Path,
    reference: set[Key],
    reference_calls: Counter[tuple[str, str]],
) -> None:
    """3 masters with a replica each; CLUSTER FAILOVER on the replica of the job's master
    while 3 workers run: redis-py's RedisCluster follows the slot to the new master."""
    with RedisCluster(masters=3, replicas=1) as servers:
        marker = JobKeys.for_job("cluster-failover").marker
        old: list[int] = []

        def failover() -> None:
            old.append(servers.master_of(marker))
            servers.node(servers.replica_of(old[0])).execute_command("CLUSTER FAILOVER")
            deadline = time.monotonic() + 30
            while servers.master_of(marker) == old[0] and time.monotonic() < deadline:
                time.sleep(0.1)

        codes, cluster = run_with_failover(
            tmp_path, servers.url, sandbox, seeds_file, "cluster-failover", servers.client(), failover
        )
        moved_to = servers.master_of(marker)
        status = Job(servers.client(), JobKeys.for_job("cluster-failover")).status(2)
    log = cluster.log_text()
    assert moved_to != old[0]
    assert codes == [0, 0, 0], log[-3000:]
    assert {key_of(p) for p in cluster.products()} == reference
    assert set(paid_pages(sandbox)) == set(reference_calls)
    assert status.drained and "Traceback" not in log


def test_eight_workers_on_a_cluster_pay_each_page_once_and_find_what_one_process_finds(
    tmp_path: Path,
    sandbox: SandboxThread,
    seeds_file: Path,
    reference: set[Key],
    reference_calls: Counter[tuple[str, str]],
) -> None:
    """More workers than pages in flight at times: eight on one job of a 3-master cluster,
    every call paid once, the union of their feeds what one process finds
    (benchmarks/redis_scale.py runs 20 for the figures; this is the correctness check)."""
    with RedisCluster(masters=3) as servers:
        cluster = Cluster(tmp_path, servers.url, sandbox.base_url, "eight")
        push_seeds(Job(servers.client(), JobKeys.for_job("eight")))
        sandbox.reset()
        cluster.start(8)
        codes = cluster.wait(180)
    log = cluster.log_text()
    assert codes == [0] * 8, log[-3000:]
    products = cluster.products()
    assert {key_of(p) for p in products} == reference and len(products) == len(reference)
    assert paid_pages(sandbox) == reference_calls  # each call once, across eight workers
    assert log.count("Spider closed (finished)") == 8
