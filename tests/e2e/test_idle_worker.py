"""An idle worker's cost to Redis: a worker with nothing to do while others still
work looks for seeds less and less often, yet takes new seeds and stops on a drained job in
time. Counted with a real redis-server's INFO commandstats (commands a Lua script runs inside
Redis included), one real `scrapy crawl` worker, the sandbox over HTTP.

Before the idle looks backed off, such a worker sent about 55 commands a second with
TMAPI_REDIS_POLL_INTERVAL=0.2 (a seed look of 7 and an empty pop of 4, five times a second):
20 such workers were two thirds of a 20-worker job's Redis commands.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from tests.crawl_helpers import scrapy
from tests.redis_server import RedisServer
from tests.seeds import push_json, seed_json
from tmapi_spiders.api.contract import SearchQuery
from tmapi_spiders.distributed.job import Job
from tmapi_spiders.distributed.keys import JobKeys
from tmapi_spiders.distributed.start import IDLE_LOOK_MAX
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

JOB = "idle"
IDLE_COMMANDS_PER_SECOND = 5  # seed looks, empty pops, the heartbeat and the progress line's status, together
WARM_UP = 8.0  # the wait doubles 0.2, 0.4, ..., 3.2, then stays at IDLE_LOOK_MAX


def image(name: str) -> dict[str, Any]:
    return seed_json(f"https://cbu01.alicdn.com/img/ibank/{name}/total-20.jpg", SearchQuery(), 0)


def commands(client: Any) -> int:
    """Every command Redis ran so far, but INFO (the test's own)."""
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for name, v in stats.items() if name != "cmdstat_info")


def wait_until(predicate: Any, timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_an_idle_worker_looks_rarely_yet_takes_new_seeds_and_stops_when_the_job_drains(tmp_path: Path) -> None:
    with SandboxThread(SandboxConfig(latency=0.05)) as sandbox, RedisServer() as server:
        client = server.client()
        job = Job(client, JobKeys.for_job(JOB))
        assert push_json(job, [image("held")]) == (1, 0)
        # Another worker holds the job's only seed: work is left, none of it for ours.
        _, [(foreign, _)] = job.pop_seeds("another-worker", 300, 1)
        settings = {
            "REDIS_URL": server.url,
            "TMAPI_JOB": JOB,
            "TMAPI_WORKER_ID": "idler",
            "TMAPI_REDIS_POLL_INTERVAL": "0.2",
            "MAX_IDLE_TIME_BEFORE_CLOSE": "1",
            "AUTOTHROTTLE_ENABLED": "false",
            "LOG_LEVEL": "INFO",
        }
        args = ["crawl", "image_search", "-o", str(tmp_path / "out.jsonl")]
        args += [arg for key, value in settings.items() for arg in ("-s", f"{key}={value}")]
        log = tmp_path / "worker.log"
        with open(log, "w", encoding="utf-8") as handle:
            worker = scrapy(args, sandbox.base_url, stdout=subprocess.DEVNULL, stderr=handle)
        try:
            wait_until(lambda: client.zscore(job.keys.workers, "idler") is not None, 60, "the worker to join")
            time.sleep(WARM_UP)
            before, started = commands(client), time.monotonic()
            time.sleep(7)  # one or two looks at IDLE_LOOK_MAX apart, and the heartbeat
            rate = (commands(client) - before) / (time.monotonic() - started)
            assert rate <= IDLE_COMMANDS_PER_SECOND, f"{rate:.1f} Redis commands a second from an idle worker"
            assert sandbox.stats()["total_calls"] == 0

            # A seed pushed now (`scrapy seed` mid-job) is taken at the worker's next look.
            assert push_json(job, [image("late")]) == (1, 0)
            took = wait_until(lambda: client.llen(job.keys.seeds) == 0, 3 * IDLE_LOOK_MAX, "the new seed taken")
            assert took <= IDLE_LOOK_MAX + 1
            wait_until(lambda: int(client.hget(job.keys.stats, "images_done") or 0) == 1, 30, "the new seed done")

            # The other worker finishes: the job is drained, and the idle worker stops by itself.
            job.ack([foreign])
            wait_until(lambda: worker.poll() is not None, IDLE_LOOK_MAX + 15, "the worker to stop")
        finally:
            if worker.poll() is None:
                worker.kill()
            worker.wait()
        calls = sandbox.stats()["total_calls"]
    text = log.read_text(encoding="utf-8")
    assert worker.returncode == 0, text[-3000:]
    assert "is drained and this worker was idle 1.0 s" in text
    assert calls == 1  # the late seed's one page
