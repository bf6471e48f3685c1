"""The one Scrapy internal the project still reads (the download handler's pool), checked."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest
from scrapy.exceptions import CloseSpider

from tests.crawl_helpers import REPO
from tmapi_spiders.download import UNSUPPORTED_REASON, CountedHTTP11DownloadHandler, stop_automatic_retries

# The handler as a crawl builds it, under the crawl's own reactor: in a process of its own,
# since a reactor, once installed, is the process's for good.
BUILD_HANDLER = """
from scrapy.utils.project import get_project_settings
from scrapy.utils.reactor import install_reactor
from scrapy.utils.test import get_crawler
from tmapi_spiders.download import CountedHTTP11DownloadHandler

settings = get_project_settings()
install_reactor(settings["TWISTED_REACTOR"])
handler = CountedHTTP11DownloadHandler.from_crawler(get_crawler(settings_dict=dict(settings)))
print(handler.unsupported, handler._pool.retryAutomatically)
"""


def test_the_download_handler_turns_twisteds_re_send_off() -> None:
    env = {"TMAPI_API_TOKEN": "unit-token", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", BUILD_HANDLER], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["None", "False"]


def test_a_handler_without_twisteds_pool_is_named_and_stops_the_crawl_at_open() -> None:
    class Pool:
        retryAutomatically = "yes"  # not the bool Twisted's pool has

    class Renamed:
        _pool = Pool()

    problem = stop_automatic_retries(object())
    assert problem is not None and problem.startswith("object has no Twisted connection pool")
    assert stop_automatic_retries(Renamed()) is not None
    with pytest.raises(CloseSpider) as raised:
        CountedHTTP11DownloadHandler._refuse_to_start(SimpleNamespace(unsupported=problem))  # type: ignore[arg-type]
    assert raised.value.reason == UNSUPPORTED_REASON == "tmapi_scrapy_unsupported"
