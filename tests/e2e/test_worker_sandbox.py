"""A worker of a shared job refuses TMAPI_SANDBOX with one line (the sandbox would be private
to that worker), before it touches Redis or makes a call."""

from __future__ import annotations

from pathlib import Path

from tests.crawl_helpers import run_scrapy, scrapy_env


def test_a_worker_refuses_the_in_process_sandbox(tmp_path: Path) -> None:
    cmd = ["crawl", "image_search", "-O", str(tmp_path / "p.jsonl")]
    cmd += ["-s", "REDIS_URL=redis://127.0.0.1:1/0", "-s", "TMAPI_SANDBOX=true"]
    done = run_scrapy(cmd, scrapy_env("http://127.0.0.1:9"), timeout=60)
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "TMAPI_SANDBOX starts a private sandbox in each worker" in errors[0]
    assert "Traceback" not in done.stderr
