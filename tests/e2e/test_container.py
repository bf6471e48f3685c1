"""The container image (Dockerfile), built and run with podman where the machine allows.

A sandbox crawl inside the image (TMAPI_SANDBOX: no token, no network beyond loopback),
its feed written to a mounted volume. Skipped, saying exactly why, where podman is missing,
where the base image (python:3.11-slim, or TMAPI_TEST_BASE_IMAGE) cannot be had (no
container registry reachable), or where podman cannot start a container at all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.crawl_helpers import REPO

BASE = os.environ.get("TMAPI_TEST_BASE_IMAGE", "python:3.11-slim")
TAG = "localhost/tmapi-spiders:test"


def podman(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)


def last_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit {done.returncode}"


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (.ci/run installs it where apt-get can)")
    if podman("image", "exists", BASE).returncode != 0:
        pulled = podman("pull", "-q", BASE, timeout=120)
        if pulled.returncode != 0:
            pytest.skip(f"base image {BASE} cannot be had (no container registry reachable): {last_line(pulled)}")
    probe = podman("run", "--rm", BASE, "true", timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"podman cannot run a container here: {last_line(probe)}")
    built = podman("build", "-q", "--build-arg", f"BASE={BASE}", "-t", TAG, str(REPO))
    assert built.returncode == 0, built.stderr[-3000:]
    return TAG


def test_a_sandbox_crawl_inside_the_image_writes_to_a_mounted_volume(image: str, tmp_path: Path) -> None:
    (tmp_path / "images.txt").write_text("https://cbu01.alicdn.com/img/container.jpg?total=40\n", encoding="utf-8")
    tmp_path.chmod(0o777)  # the image's non-root user writes here
    done = podman(
        "run", "--rm", "-v", f"{tmp_path}:/data", image, "crawl", "image_search",
        "-a", "urls_file=/data/images.txt", "-s", "TMAPI_SANDBOX=true", "-O", "/data/products.jsonl",
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "products.jsonl").read_text().splitlines()]
    assert len(records) == 40
    summary = json.loads((tmp_path / "products.summary.json").read_text())
    assert [i["status"] for i in summary["images"]] == ["done"]
    user = podman("run", "--rm", "--entrypoint", "id", image, "-u")
    assert user.stdout.strip() != "0"
