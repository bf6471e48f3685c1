"""Managed-Redis settings: TLS files, Cluster, Sentinel, key names in one hash slot,
jobs under the old key names; checked before a worker starts, one line naming the setting."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster
from redis.sentinel import Sentinel
from scrapy.settings import Settings

from tests.crawl_helpers import run_scrapy, scrapy_env
from tests.redis_server import RedisServer, TlsRedisServer, tls_supported
from tests.seeds import push_json
from tmapi_spiders.commands.job import NO_REDIS_URL
from tmapi_spiders.distributed import connection
from tmapi_spiders.distributed.job import Job
from tmapi_spiders.distributed.keys import JobKeys, legacy_keys
from tmapi_spiders.distributed.preflight import check

IMAGE = "https://cbu01.alicdn.com/img/ibank/O1CN01Lnbnos2LkORtHhOVp_!!3367999730-0-cib.jpg"


def settings(**values: object) -> Settings:
    base = Settings()
    base.setmodule("tmapi_spiders.settings")
    base.setdict(values, priority="cmdline")
    return base


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"REDIS_URL": "http://h:1"}, "REDIS_URL must start with one of redis://"),
        ({"REDIS_URL": "redis://h:1", "REDIS_TLS_CA_FILE": "/etc/hostname"}, "REDIS_TLS_CA_FILE is set but REDIS_URL"),
        ({"REDIS_URL": "rediss://h:1", "REDIS_TLS_CA_FILE": "/no/such/ca.pem"}, "REDIS_TLS_CA_FILE: no such file"),
        ({"REDIS_URL": "rediss://h:1", "REDIS_TLS_CERT_FILE": "/etc/hostname"}, "REDIS_TLS_CERT_FILE and REDIS_TLS"),
        ({"REDIS_URL": "rediss://h:1", "REDIS_TLS_VERIFY": "maybe"}, "REDIS_TLS_VERIFY must be true or false"),
        ({"REDIS_SENTINELS": "h:26379"}, "REDIS_SENTINEL_MASTER is not set"),
        ({"REDIS_SENTINELS": "h"}, "REDIS_SENTINELS must be host:port"),
        ({"REDIS_SENTINELS": "h:\u00b2", "REDIS_SENTINEL_MASTER": "m"}, "REDIS_SENTINELS must be host:port"),
        ({"REDIS_URL": "redis+sentinel://h:1/m/\u00b2"}, "REDIS_URL: the db after the master name must be a number"),
        ({"REDIS_URL": "redis+sentinel://h:1/m/x"}, "REDIS_URL: the db after the master name must be a number"),
        ({"REDIS_URL": "redis+sentinel://h:1/m", "REDIS_CLUSTER": "true"}, "REDIS_CLUSTER cannot be used with"),
        ({"REDIS_URL": "redis://h:1/xyz"}, "REDIS_URL: the db after the host must be a number, got 'xyz'"),
        ({"REDIS_URL": "redis+cluster://h:1/x"}, "REDIS_URL: the db after the host must be a number, got 'x'"),
        ({"REDIS_URL": "redis://h:abc/0"}, "REDIS_URL cannot be read (Port could not be cast"),
        ({"REDIS_URL": "redis://[::1/0"}, "REDIS_URL cannot be read (Invalid IPv6 URL)"),
        ({"REDIS_URL": "redis://h:1/0?db=x"}, "REDIS_URL cannot be read (Invalid value for 'db'"),
    ],
)
def test_a_redis_setting_that_cannot_work_is_one_line_naming_it(values: dict[str, str], message: str) -> None:
    with pytest.raises(connection.SettingError) as raised:
        connection.plan(settings(**values))
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


def test_scrapy_job_without_redis_says_so_in_one_line_before_loading_redis() -> None:
    # The process's own exit, then whether redis was imported: the message must not wait for it.
    code = (
        "import atexit, sys; from scrapy.cmdline import execute"
        "; atexit.register(lambda: print('redis loaded:', 'redis' in sys.modules))"
        "; sys.argv = ['scrapy', 'job']; execute()"
    )
    env = scrapy_env("http://127.0.0.1:9")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip() == f"error: {NO_REDIS_URL}"
    assert proc.stdout.strip() == "redis loaded: False"


def test_the_url_forms_become_redis_pys_own_clients() -> None:
    """Plans only: which redis-py constructor, with which arguments (no server needed)."""
    cluster = connection.plan(settings(REDIS_URL="redis+cluster://:pw@10.0.0.1:7000/0"))
    assert (cluster.func, cluster.args) == (RedisCluster.from_url, ("redis://:pw@10.0.0.1:7000/0",))
    assert connection.plan(settings(REDIS_URL="redis://h:7000", REDIS_CLUSTER="true")).func == RedisCluster.from_url
    sentinel = connection.plan(settings(REDIS_URL="rediss+sentinel://:pw@s1:26379,s2:26380/main/2"))
    manager, params = sentinel.func.__self__, sentinel.func.__self__.connection_kwargs
    hosts = [(s.get_connection_kwargs()["host"], s.get_connection_kwargs()["port"]) for s in manager.sentinels]
    assert (type(manager), hosts, sentinel.args) == (Sentinel, [("s1", 26379), ("s2", 26380)], ("main",))
    assert params["db"] == 2 and params["password"] == "pw" and params["ssl"] is True
    assert params["ssl_cert_reqs"] == "required"  # verification is on unless switched off
    by_setting = connection.plan(
        settings(REDIS_SENTINELS="s1:26379", REDIS_SENTINEL_MASTER="main", REDIS_URL="redis://:pw@ignored/3")
    )
    assert len(by_setting.func.__self__.sentinels) == 1 and by_setting.func.__self__.connection_kwargs["db"] == 3
    tls = connection.plan(settings(REDIS_URL="rediss://h:6380/0", REDIS_TLS_VERIFY="false"))
    assert tls.keywords["ssl_cert_reqs"] == "none" and tls.keywords["ssl_check_hostname"] is False


def test_a_key_setting_outside_the_jobs_hash_tag_is_refused_at_start() -> None:
    values = {"REDIS_URL": "redis://127.0.0.1:1/0", "SCHEDULER_QUEUE_KEY": "queue", "TMAPI_API_TOKEN": "t" * 20}
    problem = check(settings(**values), {}, "image_search")
    assert problem is not None and problem[0] == 2
    assert problem[1].startswith("SCHEDULER_QUEUE_KEY must contain %(spider)s")
    keys = JobKeys.for_job("j", settings(SCHEDULER_QUEUE_KEY="jobs:%(spider)s:q"))
    assert keys.requests == "jobs:{j}:q"  # still in the tag's slot
    keys.check_one_slot()


def scrapy_run(args: list[str], url: str) -> subprocess.CompletedProcess[str]:
    return run_scrapy([*args, "-s", f"REDIS_URL={url}"], scrapy_env("http://127.0.0.1:9"), timeout=60)


def test_a_job_under_the_old_key_names_is_named_and_migrated_in_one_command(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """A job seeded before the hash tags (`old:start_urls`...): a worker, `scrapy seed` and
    `scrapy job` say so in one line (exit 2) instead of seeing an empty job; `scrapy job
    --migrate` renames its keys, after which the job runs as before."""
    client = redis_server.client()
    old = JobKeys.for_job("old").untagged()
    push_json(Job(client, old), [{"url": IMAGE, "max_pages": 1}])
    client.hset(old.stats, "pages", 3)
    new = JobKeys.for_job("old")
    assert legacy_keys(client, new) == [old.seeds, old.seeds_seen, old.stats, old.marker]
    seeds = tmp_path / "seeds.txt"
    seeds.write_text(IMAGE + "\n", encoding="utf-8")

    for args in (["job"], ["seed", str(seeds)], ["crawl", "image_search"]):
        done = scrapy_run([*args, "-s", "TMAPI_JOB=old"], redis_server.url)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, (args, done.stderr[-2000:])
        assert "created with the old key names (old:start_urls...)" in lines[0] and "scrapy job --migrate" in lines[0]

    migrated = scrapy_run(["job", "--migrate", "-s", "TMAPI_JOB=old"], redis_server.url)
    assert migrated.returncode == 0 and "4 keys renamed to {old}:" in migrated.stdout, migrated.stderr
    assert client.keys("old:*") == [] and legacy_keys(client, new) == []
    status = Job(client, new).status(30)
    assert (status.seeds_left, status.counters["pages"]) == (1, 3)
    shown = scrapy_run(["job", "-s", "TMAPI_JOB=old"], redis_server.url)
    assert shown.returncode == 0 and "seeds left          1" in shown.stdout


def test_tls_settings_reach_a_server_that_asks_for_client_certificates(tmp_path: Path) -> None:
    """REDIS_TLS_CA_FILE/CERT/KEY as settings; without the CA the server's certificate is not
    trusted (verification is on by default): exit 4, one line."""
    why = tls_supported()
    if why:
        pytest.skip(f"TLS redis-server needed: {why}")
    with TlsRedisServer() as server:
        values = server.settings()
        assert connection.check_reachable(settings(**values)) is None
        client = connection.client(settings(**values))
        assert isinstance(client, redis.Redis) and client.ping()
        untrusted = {k: v for k, v in values.items() if k != "REDIS_TLS_CA_FILE"}
        problem = connection.check_reachable(settings(**untrusted))
        assert problem is not None and problem.startswith("cannot reach Redis at rediss://127.0.0.1")
        assert "certificate verify failed" in problem
        seeds = tmp_path / "seeds.txt"
        seeds.write_text(IMAGE + "\n", encoding="utf-8")
        args = ["seed", str(seeds), *[a for k, v in values.items() if k != "REDIS_URL" for a in ("-s", f"{k}={v}")]]
        seeded = scrapy_run(args, values["REDIS_URL"])
        assert seeded.returncode == 0 and "1 seeds pushed" in seeded.stdout, seeded.stderr
        assert Job(server.client(), JobKeys.for_job("image_search")).status(30).seeds_left == 1


def test_a_dupefilter_ttl_bounds_the_filter_and_forgets_only_old_fingerprints(redis_server: RedisServer) -> None:
    """TMAPI_REDIS_DUPEFILTER_TTL: a fingerprint counts for the ttl, then is dropped (16 of the
    oldest per push), so the filter holds about a ttl's worth of fingerprints, not the job's."""
    client = redis_server.client()
    job = Job(client, JobKeys.for_job("ttl"))
    push_json(job, [{"url": IMAGE}])  # the marker
    job.dupefilter_ttl = 0.5
    assert job.push_request_once("r-a", 0, "fp-a") is True
    assert job.push_request_once("r-a", 0, "fp-a") is False  # within the ttl: a duplicate
    for i in range(20):
        assert job.push_request_once(f"r-{i}", 0, f"fp-{i}")
    time.sleep(0.6)
    assert job.push_request_once("r-a", 0, "fp-a") is True  # older than the ttl: it counts no more
    assert job.push_request_once("r-late", 0, "fp-late") is True
    recent = client.zrange(job.keys.dupefilter_recent, 0, -1)
    assert len(recent) <= 21 - 16 + 2 and "fp-a" in recent and "fp-late" in recent
    assert client.exists(job.keys.dupefilter) == 0  # the unbounded set is not used at all
    job.dupefilter_ttl = 0
    assert job.push_request_once("r-b", 0, "fp-b") and not job.push_request_once("r-b", 0, "fp-b")
    assert client.sismember(job.keys.dupefilter, "fp-b")


def test_a_sentinel_url_is_shown_without_its_password() -> None:
    """Its host list is no URL netloc urllib can parse: the password is blanked all the same."""
    shown = connection.describe("redis+sentinel://:hunter2@s1:26379,s2:26379/main/0")
    assert shown == "redis+sentinel://:***@s1:26379,s2:26379/main/0"


def test_a_cluster_url_that_reaches_no_cluster_is_one_line_and_exit_4(redis_server: RedisServer) -> None:
    """No node answering, or a node not in cluster mode: redis-py raises its cluster errors, which
    are no RedisError; each is the one `cannot reach Redis` line, never a traceback."""
    closed = connection.check_reachable(settings(REDIS_URL="redis+cluster://127.0.0.1:1"))
    assert closed is not None and closed.startswith("cannot reach Redis at redis+cluster://127.0.0.1:1: ")
    plain = f"redis+cluster://127.0.0.1:{redis_server.port}/0"
    not_cluster = connection.check_reachable(settings(REDIS_URL=plain))
    assert not_cluster is not None and "Cluster mode is not enabled" in not_cluster
    shown = scrapy_run(["job"], "redis+cluster://127.0.0.1:1")
    assert shown.returncode == 4, shown.stderr[-2000:]
    assert shown.stderr.strip().startswith("error: cannot reach Redis at redis+cluster://127.0.0.1:1: ")
    assert "Traceback" not in shown.stderr and len(shown.stderr.strip().splitlines()) == 1


def test_a_redis_url_whose_db_is_no_number_stops_at_start_instead_of_using_db_0(redis_server: RedisServer) -> None:
    """redis-py reads `/xyz` as no db at all (db 0): the job would run in another job's database."""
    shown = scrapy_run(["job"], f"redis://127.0.0.1:{redis_server.port}/xyz")
    assert shown.returncode == 2, shown.stderr[-2000:]
    assert shown.stderr.strip() == "error: REDIS_URL: the db after the host must be a number, got 'xyz'"
