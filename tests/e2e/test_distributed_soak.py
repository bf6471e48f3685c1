"""Fault soak of a distributed job in CI: 300+ pages, 10 % of calls failing in every way, 3 workers,
one of them killed with SIGKILL twice (a replacement started each time).

The 2,000-page run is `benchmarks/fault_soak.py --workers 3 --kills 2`; this is the same code, smaller.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.fault_soak import distributed_table, run_distributed_soak
from tests.redis_server import RedisServer
from tmapi_spiders.distributed.job import Job
from tmapi_spiders.distributed.keys import JobKeys
from tmapi_spiders.sandbox.faults import FAULT_KINDS


@pytest.mark.slow
def test_distributed_fault_soak_with_two_kills_delivers_every_item_once_after_merge(tmp_path: Path) -> None:
    result = run_distributed_soak(tmp_path, pages=300, fault_rate=0.1, timeout=1.0, seed=1, workers=3, kills=2)
    report = distributed_table(result)
    print(report)
    clean, dist = result.clean, result.dist
    assert clean.returncode == 0 and not clean.failures and clean.stats["tmapi/pages"] >= 300, report
    # Both kills happened, each to a worker holding leases mid-crawl; everyone else stopped by itself.
    assert len(dist.kills) == 2 and all(kill.request_leases > 0 for kill in dist.kills), report
    assert sorted(dist.codes.values()) == [-9, -9, 0, 0, 0], dist.log_tail[-3000:]
    assert set(result.faults) == set(FAULT_KINDS), report
    # After the merge: all that the fault-free run delivered, nothing else, once, same content.
    assert len(result.expected) == len(clean.products) > 5000
    assert result.missing == set(), report
    assert result.unexpected == set(), report
    assert result.changed == 0 and result.duplicates == 0, report
    assert dist.failures == [] and dist.error_lines == 0, dist.log_tail[-3000:]
    # Paid calls: only the leases a kill left can be answered twice; the rest is one call per fault.
    assert result.redone <= result.orphaned, report
    assert result.calls <= result.clean_calls + result.faulted_calls + result.redone, report
    # The job finished: nothing left queued, leased or seeded.
    assert dist.job_left == {"seeds": 0, "queued": 0, "leased": 0}
    assert result.ok, report


def test_push_once_queues_an_unseen_request_and_acks_the_handover_either_way(redis_server: RedisServer) -> None:
    """The duplicate filter's check, the queueing and the handover's ack are one step: a kill
    can never leave a fingerprint marked seen whose request was not queued."""
    job = Job(redis_server.client(), JobKeys.for_job("push-once"))
    job.push_request_once("parent", 1, "")
    lease, _ = job.pop_request("w", 30) or ("", "")
    assert job.push_request_once("page-3", 3, "fp-page-3", handover=lease) is True
    assert job.server.zscore(job.keys.requests, "page-3") == -3
    assert job.server.sismember(job.keys.dupefilter, "fp-page-3")
    assert not job.server.zcard(job.keys.inflight) and not job.server.hlen(job.keys.leases)
    # The same page asked for again (its parent redone after a kill): not queued, the lease still acked.
    job.server.zrem(job.keys.requests, "page-3")  # taken and done by some worker
    job.push_request_once("parent-again", 1, "")
    lease, data = job.pop_request("w", 30) or ("", "")
    assert data == "parent-again"
    assert job.push_request_once("page-3", 3, "fp-page-3", handover=lease) is False
    assert not job.server.zcard(job.keys.requests)
    assert not job.server.zcard(job.keys.inflight) and not job.server.hlen(job.keys.leases)
