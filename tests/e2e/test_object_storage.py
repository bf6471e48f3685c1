"""Feeds in object storage: `-O s3://bucket/products.jsonl` against a real S3 API server.

moto's server mode (`ThreadedMotoServer`, started once for the module on a free loopback
port) answers S3's HTTP API; the crawl is a real `scrapy crawl` subprocess whose boto3 finds
the keys in its environment, as on a user's machine. Checked: records and the failures feed
land in the bucket, the summary and answer store stay local; a missing bucket, missing
credentials and a missing client library are one line and exit 2 before any call; an upload
that fails at close is exit 7 and no image is counted done (tmapi_spiders/crawl/storage.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.crawl_helpers import read_stats, run_scrapy
from tests.scrapy_server import start_scrapy
from tmapi_spiders.jobs import outcome
from tmapi_spiders.sandbox import SandboxThread

boto3 = pytest.importorskip("boto3", reason="the s3 extra (boto3) is not installed")
moto_server = pytest.importorskip("moto.server", reason="moto[server] (test extra) is not installed")

TOKEN = "tok-S3-SECRET-41"
# This module's `sandbox` (tests/conftest.py). 0.15 s a call: the crawl of two images lasts long
# enough to remove its bucket meanwhile.
SANDBOX_OPTIONS = {"tokens": (TOKEN,), "latency": 0.15}
IMAGES = [f"https://cbu01.alicdn.com/img/s3-{i}.jpg?total=60" for i in range(2)]  # 3 pages each
KEYS = {"AWS_ACCESS_KEY_ID": "tmapi-test-key", "AWS_SECRET_ACCESS_KEY": "tmapi-test-secret"}
SETTINGS = {"CONCURRENT_REQUESTS": "2", "AUTOTHROTTLE_ENABLED": "false", "TMAPI_PROGRESS_INTERVAL": "0"}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, Any]]:
    """The S3 endpoint's URL and a client of it."""
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1", **{k.lower(): v for k, v in KEYS.items()})
    try:
        yield url, client
    finally:
        server.stop()


def bucket(client: Any, name: str) -> str:
    client.create_bucket(Bucket=name)
    return name


def keys(client: Any, name: str) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=name).get("Contents", []))


def env_for(endpoint: str, base_url: str, credentials: bool = True, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMAPI_", "REDIS_", "AWS_"))}
    env.update(TMAPI_API_TOKEN=TOKEN, TMAPI_BASE_URL=base_url, AWS_DEFAULT_REGION="us-east-1")
    # No profile, no instance metadata: only what this test puts in the environment.
    env.update(AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_CONFIG_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
    if credentials:
        env.update(KEYS)
    env.update(AWS_ENDPOINT_URL=endpoint, **extra)
    return env


def command(tmp: Path, uri: str) -> list[str]:
    seeds = tmp / "seeds.txt"
    seeds.write_text("\n".join(IMAGES) + "\n", encoding="utf-8")
    merged = {
        **SETTINGS,
        "TMAPI_CACHE_DIR": str(tmp / "store"),
        "TMAPI_OUTPUT_DIR": str(tmp / "output"),
        "TMAPI_STATS_FILE": str(tmp / "stats.json"),
    }
    cmd = ["crawl", "image_search", "-a", f"urls_file={seeds}", "-O", uri]
    return cmd + [arg for key, value in merged.items() for arg in ("-s", f"{key}={value}")]


def run(tmp: Path, uri: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_scrapy(command(tmp, uri), env)


def summary_of(tmp: Path) -> dict[str, Any]:
    [path] = (tmp / "output").glob("*.summary.json")
    summary: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return summary


def assert_refused(done: subprocess.CompletedProcess[str], sandbox: SandboxThread, *words: str) -> str:
    assert done.returncode == outcome.BAD_INPUT, done.stderr[-3000:]
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and all(word in line for word in words), line
    assert sandbox.stats()["total_calls"] == 0
    return line


def test_records_failures_feed_land_in_the_bucket_summary_and_store_stay_local(
    tmp_path: Path, sandbox: SandboxThread, s3: tuple[str, Any]
) -> None:
    endpoint, client = s3
    name = bucket(client, "tmapi-records")
    done = run(tmp_path, f"s3://{name}/run-1/products.jsonl", env_for(endpoint, sandbox.base_url))
    assert done.returncode == outcome.OK, done.stderr[-3000:]
    assert keys(client, name) == ["run-1/products.failures.jsonl", "run-1/products.jsonl"]  # no probe left behind
    body = client.get_object(Bucket=name, Key="run-1/products.jsonl")["Body"].read().decode()
    records = [json.loads(line) for line in body.splitlines()]
    assert len(records) == 2 * 60 and {r["query_image_url"] for r in records} == set(IMAGES)
    assert TOKEN not in body and TOKEN not in done.stderr
    summary = summary_of(tmp_path)
    assert [i["status"] for i in summary["images"]] == ["done", "done"]
    assert (tmp_path / "store" / "answers.sqlite3").exists()
    assert sandbox.stats()["total_calls"] == 6


def test_a_missing_bucket_is_one_line_before_any_call(
    tmp_path: Path, sandbox: SandboxThread, s3: tuple[str, Any]
) -> None:
    endpoint, _client = s3
    done = run(tmp_path, "s3://tmapi-no-such-bucket/products.jsonl", env_for(endpoint, sandbox.base_url))
    line = assert_refused(done, sandbox, "s3://tmapi-no-such-bucket/products.jsonl", "does not exist")
    assert "NoSuchBucket" not in done.stderr and "Traceback" not in done.stderr, line


def test_missing_credentials_are_one_line_before_any_call(
    tmp_path: Path, sandbox: SandboxThread, s3: tuple[str, Any]
) -> None:
    endpoint, client = s3
    name = bucket(client, "tmapi-nocreds")
    done = run(tmp_path, f"s3://{name}/products.jsonl", env_for(endpoint, sandbox.base_url, credentials=False))
    assert_refused(done, sandbox, "no AWS credentials", "AWS_ACCESS_KEY_ID")


def test_a_storage_library_that_is_missing_names_the_extra(tmp_path: Path, sandbox: SandboxThread) -> None:
    # botocore made unimportable for the crawl only: a folder first on its path whose
    # `botocore` fails to import, as on a machine without the s3 extra.
    shadow = tmp_path / "shadow"
    (shadow / "botocore").mkdir(parents=True)
    (shadow / "botocore" / "__init__.py").write_text("raise ImportError('botocore hidden by the test')\n")
    env = env_for("http://127.0.0.1:9", sandbox.base_url, PYTHONPATH=str(shadow))
    done = run(tmp_path, "s3://tmapi-any/products.jsonl", env)
    assert_refused(done, sandbox, "botocore", "pip install 'tmapi-spiders[s3]'")
    try:
        import google.cloud.storage  # noqa: F401
    except ImportError:
        done = run(tmp_path, "gs://tmapi-any/products.jsonl", env_for("http://127.0.0.1:9", sandbox.base_url))
        assert_refused(done, sandbox, "gs://tmapi-any/products.jsonl", "pip install 'tmapi-spiders[gcs]'")


def test_an_upload_that_fails_at_close_is_exit_7_and_nothing_done(
    tmp_path: Path, sandbox: SandboxThread, s3: tuple[str, Any]
) -> None:
    endpoint, client = s3
    name = bucket(client, "tmapi-vanishing")
    proc = start_scrapy(
        command(tmp_path, f"s3://{name}/products.jsonl"), env_for(endpoint, sandbox.base_url),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while sandbox.stats()["total_calls"] == 0:  # the crawl is paying: its outputs were checked
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    client.delete_bucket(Bucket=name)  # empty: the check's probe object is already gone
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == outcome.WRITE_FAILED, err[-3000:]
    assert f"Could not write s3://{name}/products" in err and "NoSuchBucket" in err
    assert "Traceback" not in err and TOKEN not in err
    assert read_stats(tmp_path / "stats.json")["finish_reason"] == "finished"
    summary = summary_of(tmp_path)
    assert [i["status"] for i in summary["images"]] == ["unfinished", "unfinished"]
    assert all("records not written" in i["reason"] for i in summary["images"])
