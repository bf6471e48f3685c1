"""Twisted's silent re-send, switched off through its public class default, checked."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest
from scrapy.exceptions import CloseSpider
from twisted.web.client import HTTPConnectionPool

from tests.crawl_helpers import REPO
from tmapi_spiders.api.download import UNSUPPORTED_REASON, CountedHTTP11DownloadHandler, stop_automatic_retries

# The handler as a crawl builds it, under the crawl's own reactor: in a process of its own,
# since a reactor, once installed, is the process's for good.
BUILD_HANDLER = """
from scrapy.utils.project import get_project_settings
from scrapy.utils.reactor import install_reactor
from scrapy.utils.test import get_crawler
from twisted.web.client import HTTPConnectionPool
from tmapi_spiders.api.download import CountedHTTP11DownloadHandler

settings = get_project_settings()
install_reactor(settings["TWISTED_REACTOR"])
from twisted.internet import reactor

print(HTTPConnectionPool(reactor).retryAutomatically)
handler = CountedHTTP11DownloadHandler.from_crawler(get_crawler(settings_dict=dict(settings)))
print(handler.unsupported, HTTPConnectionPool(reactor).retryAutomatically)
"""


def test_the_download_handler_turns_twisteds_re_send_off() -> None:
    env = {"TMAPI_API_TOKEN": "unit-token", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", BUILD_HANDLER], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "None", "False"]


def test_the_switch_is_set_on_the_pool_class_and_its_absence_stops_the_crawl_at_open() -> None:
    class Pool(HTTPConnectionPool):
        pass

    class Renamed:
        retryAutomatically = "yes"  # not the bool Twisted's pool has

    assert stop_automatic_retries(Pool) is None
    assert Pool.retryAutomatically is False and Pool(None).retryAutomatically is False
    problem = stop_automatic_retries(object)
    assert problem is not None and problem.startswith("Twisted's object has no `retryAutomatically`")
    assert stop_automatic_retries(Renamed) is not None
    with pytest.raises(CloseSpider) as raised:
        CountedHTTP11DownloadHandler._refuse_to_start(SimpleNamespace(unsupported=problem))  # type: ignore[arg-type]
    assert raised.value.reason == UNSUPPORTED_REASON == "tmapi_scrapy_unsupported"
