"""Installed as a package, it works: a wheel built from this checkout, installed with its
dependencies and its sandbox extra into a fresh virtual environment outside the repository,
runs the demo crawl in an empty directory by the commands docs/usage.md ("Installed from a
wheel") gives, and writes its HTML report.

Slow (the fresh environment installs Scrapy and the rest from the package index), so it is
marked `slow`; CI runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.crawl_helpers import REPO

pytestmark = pytest.mark.slow

IMAGE = "https://cbu01.alicdn.com/img/ibank/wheel/total-41.jpg"


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 900) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def _source_copy(dest: Path) -> Path:
    """The checkout's files, as git sees them (no .venv, nothing ignored, no build/ left in the repository)."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, files.decode().split("\0")):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def test_the_wheel_installs_into_a_fresh_venv_and_runs_the_demo_in_an_empty_directory(tmp_path: Path) -> None:
    src = _source_copy(tmp_path / "src")
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(src)], tmp_path)
    wheels = list(dist.glob("tmapi_spiders-*.whl"))
    assert len(wheels) == 1, wheels

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    # --no-compile: pip would byte-compile every dependency (~9 s of the suite's 2 cores); the
    # crawls below compile what they import, the files installed are the same.
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile"]
    _run([*pip, f"{wheels[0]}[sandbox]"], tmp_path)

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMAPI_", "REDIS_", "SCRAPY_", "PYTHON"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"

    # Without the project's settings, Scrapy says so (what a user meets first) ...
    bare = subprocess.run(
        ["scrapy", "crawl", "image_search"], cwd=empty, env=env, capture_output=True, text=True, timeout=120
    )
    assert bare.returncode != 0 and "no active project" in (bare.stdout + bare.stderr)

    # ... the console entry point, as documented:
    _run(
        ["tmapi-spiders", "crawl", "image_search", "-a", f"urls={IMAGE}", "-s", "TMAPI_SANDBOX=true", "-O", "a.jsonl"],
        empty,
        env,
        timeout=180,
    )
    # ... and the one-liner for plain `scrapy`:
    _run(
        [
            "bash",
            "-c",
            f"SCRAPY_SETTINGS_MODULE=tmapi_spiders.settings scrapy crawl image_search -a urls={IMAGE} "
            "-s TMAPI_SANDBOX=true -O b.jsonl",
        ],
        empty,
        env,
        timeout=180,
    )
    for name in ("a", "b"):
        records = [json.loads(line) for line in (empty / f"{name}.jsonl").read_text().splitlines()]
        assert len(records) == 41
        assert {r["query_image_url"] for r in records} == {IMAGE}
        assert (empty / f"{name}.failures.jsonl").read_text() == ""
        assert json.loads((empty / f"{name}.summary.json").read_text())["totals"]["items"] == 41
    # the report's page files (package data) are installed with it
    _run(["tmapi-spiders", "report", "a.jsonl", "-o", "a.html"], empty, env, timeout=120)
    page = (empty / "a.html").read_text(encoding="utf-8")
    assert "<!doctype html>" in page and ".card {" in page and "window.reportRest = function" in page
    # the installed code ran, not this checkout's
    where = _run(
        [str(venv / "bin" / "python"), "-c", "import tmapi_spiders; print(tmapi_spiders.__file__)"], empty, env
    )
    assert str(venv) in where and str(REPO) not in where
