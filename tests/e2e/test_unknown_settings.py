"""A `TMAPI_*` setting the project does not know (a typo: TMAPI_MAX_CALL for TMAPI_MAX_CALLS)
is refused before anything is paid, wherever it was given: -s, a project's settings module,
a spider's custom_settings, the environment. One line, exit 2, no call reaches the sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SANDBOX_TOKEN
from tests.crawl_helpers import REPO, crawl, run_scrapy
from tmapi_spiders import registry
from tmapi_spiders.sandbox import SandboxThread

IMAGES = "https://cbu01.alicdn.com/img/typo-1.jpg?total=45,https://cbu01.alicdn.com/img/typo-2.jpg?total=45"
TYPO = "error: unknown setting TMAPI_MAX_CALL (did you mean TMAPI_MAX_CALLS?)"

PROJECT_SETTINGS = """
from tmapi_spiders.settings import *  # noqa: F403
SPIDER_MODULES = ["tmapi_spiders.spiders", "typo_spiders"]
{extra}
"""
TYPO_SPIDER = """
from tmapi_spiders.spiders.image_search import ImageSearchSpider

class TypoSearch(ImageSearchSpider):
    name = "typo_search"
    custom_settings = {**(ImageSearchSpider.custom_settings or {}), "TMAPI_MAX_CALL": 5}
"""


def project(tmp_path: Path, extra: str) -> dict[str, str]:
    """A project of the user's own: a settings module beside a spider module, on PYTHONPATH."""
    (tmp_path / "typo_settings.py").write_text(PROJECT_SETTINGS.format(extra=extra))
    (tmp_path / "typo_spiders.py").write_text(TYPO_SPIDER)
    return {"SCRAPY_SETTINGS_MODULE": "typo_settings", "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}


def assert_refused(stderr: str, returncode: int, line: str, sandbox: SandboxThread) -> None:
    assert returncode == 2, stderr[-2000:]
    assert stderr.strip().splitlines() == [line]
    assert sandbox.calls() == []  # nothing paid, nothing even asked


def test_a_typo_given_with_s_is_refused_before_any_call(tmp_path: Path, sandbox: SandboxThread) -> None:
    result = crawl(tmp_path, sandbox.base_url, {"urls": IMAGES}, token=SANDBOX_TOKEN, settings={"TMAPI_MAX_CALL": "5"})
    assert_refused(result.stderr, result.returncode, TYPO, sandbox)
    # The name as meant: the cap holds (3 calls paid of the 6 the images need).
    capped = crawl(tmp_path, sandbox.base_url, {"urls": IMAGES}, token=SANDBOX_TOKEN, settings={"TMAPI_MAX_CALLS": "3"})
    assert capped.returncode != 2 and len(sandbox.calls()) == 3, capped.stderr[-2000:]


@pytest.mark.parametrize("where", ["settings module", "custom_settings"])
def test_a_typo_in_a_projects_settings_or_a_spiders_custom_settings_is_refused(
    tmp_path: Path, sandbox: SandboxThread, where: str
) -> None:
    env = project(tmp_path, "TMAPI_MAX_CALL = 5" if where == "settings module" else "")
    spider = "image_search" if where == "settings module" else "typo_search"
    cmd = [sys.executable, "-m", "scrapy", "crawl", spider, "-a", f"urls={IMAGES}", "-O", str(tmp_path / "p.jsonl")]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TMAPI_")}
    full_env.update(env, TMAPI_API_TOKEN=SANDBOX_TOKEN, TMAPI_BASE_URL=sandbox.base_url)
    proc = subprocess.run(cmd, cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=120)
    assert_refused(proc.stderr, proc.returncode, TYPO, sandbox)


def test_a_typo_in_the_environment_is_refused(tmp_path: Path, sandbox: SandboxThread) -> None:
    result = crawl(tmp_path, sandbox.base_url, {"urls": IMAGES}, token=SANDBOX_TOKEN, env={"TMAPI_MAX_CALL": "5"})
    line = "error: unknown setting TMAPI_MAX_CALL in the environment (did you mean TMAPI_MAX_CALLS?)"
    assert_refused(result.stderr, result.returncode, line, sandbox)
    # A real setting the environment is not read for: said so, not ignored.
    result = crawl(tmp_path, sandbox.base_url, {"urls": IMAGES}, token=SANDBOX_TOKEN, env={"TMAPI_MAX_CALLS": "5"})
    read = ", ".join(s.name for s in registry.SETTINGS if s.env and s.name.startswith("TMAPI_"))
    assert read.startswith("TMAPI_API_TOKEN, TMAPI_BASE_URL")
    line = f"error: TMAPI_MAX_CALLS is set in the environment, which is read only for {read}:"
    line += " give -s TMAPI_MAX_CALLS=... instead"
    assert_refused(result.stderr, result.returncode, line, sandbox)


@pytest.mark.parametrize("command", [["seed", "seeds.txt"], ["job"]])
def test_seed_and_job_refuse_a_typo_too(tmp_path: Path, command: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMAPI_")}
    args = [*command, "-s", "REDIS_URL=redis://127.0.0.1:1/0", "-s", "TMAPI_JOBB=x"]
    proc = run_scrapy(args, env, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: unknown setting TMAPI_JOBB (did you mean TMAPI_JOB?)"
