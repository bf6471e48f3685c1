"""The project's one add-on sets what a feature needs below the user: the project's settings,
a spider's `custom_settings` and the command line each win over it (Scrapy's own crawler,
its settings applied as a crawl applies them)."""

from __future__ import annotations

from typing import Any

from scrapy.settings import Settings
from scrapy.utils.project import get_project_settings
from scrapy.utils.test import get_crawler

from tmapi_spiders.spiders.image_search import ImageSearchSpider

STORE = {"TMAPI_CACHE": "true"}


def project(**overrides: Any) -> dict[str, Any]:
    """The project's settings.py as a dict (get_crawler sets them at project priority)."""
    settings: Settings = get_project_settings()
    # The project's own values only (Scrapy's defaults stay defaults); get_crawler picks the
    # reactor settings itself: no reactor is installed in unit tests.
    values = {
        name: settings[name] for name in settings if (settings.getpriority(name) or 0) >= 20 and "REACTOR" not in name
    }
    values.update(STORE, **overrides)
    return values


class OwnStoreSpider(ImageSearchSpider):
    name = "own_store"
    custom_settings = {"HTTPCACHE_DIR": "/spider/store", "CONCURRENT_REQUESTS": 3}


def test_the_add_on_turns_the_features_on_for_our_spiders() -> None:
    settings = get_crawler(ImageSearchSpider, project()).settings
    assert settings.getbool("HTTPCACHE_ENABLED") is True
    assert settings["HTTPCACHE_DIR"].endswith("tmapi-cache")
    assert settings.getint("CONCURRENT_REQUESTS") == 16
    assert settings.getbool("AUTOTHROTTLE_ENABLED") is True
    assert settings.getpriority("HTTPCACHE_DIR") == settings.getpriority("AUTOTHROTTLE_ENABLED") == 15  # "addon"


def test_the_projects_settings_win_over_the_add_on() -> None:
    given = project(HTTPCACHE_DIR="/project/store", CONCURRENT_REQUESTS=4)
    settings = get_crawler(ImageSearchSpider, given).settings
    assert settings["HTTPCACHE_DIR"] == "/project/store"
    assert settings.getint("CONCURRENT_REQUESTS") == 4


def test_a_spiders_custom_settings_win_over_the_add_on() -> None:
    settings = get_crawler(OwnStoreSpider, project()).settings
    assert settings["HTTPCACHE_DIR"] == "/spider/store"
    assert settings.getint("CONCURRENT_REQUESTS") == 3


def test_the_command_line_wins_over_the_add_on() -> None:
    crawler = get_crawler(ImageSearchSpider, project())
    given = Settings(project())
    given.set("HTTPCACHE_DIR", "/cmdline/store", priority="cmdline")
    given.set("AUTOTHROTTLE_ENABLED", False, priority="cmdline")
    from tmapi_spiders.addons import TmapiAddon

    TmapiAddon(crawler).update_settings(given)  # what the crawler does with the merged settings
    assert given["HTTPCACHE_DIR"] == "/cmdline/store"
    assert given.getbool("AUTOTHROTTLE_ENABLED") is False


def test_a_plan_limit_still_turns_autothrottle_off_and_raises_concurrency() -> None:
    settings = get_crawler(ImageSearchSpider, project(TMAPI_MAX_QPS=40)).settings
    assert settings.getbool("AUTOTHROTTLE_ENABLED") is False
    assert settings.getint("CONCURRENT_REQUESTS") == 40


def test_a_users_own_spider_is_left_alone() -> None:
    from scrapy import Spider

    class Mine(Spider):
        name = "mine"

    settings = get_crawler(Mine, project()).settings
    assert not settings.getbool("HTTPCACHE_ENABLED")


def test_the_sandbox_add_on_points_the_crawl_at_its_own_server() -> None:
    from tmapi_spiders.sandbox.addon import TOKEN, SandboxServer

    given = project(TMAPI_SANDBOX=True, TMAPI_API_TOKEN="a-real-token-0042", TMAPI_CACHE="auto")
    settings = get_crawler(ImageSearchSpider, given).settings
    port = settings.getint("TMAPI_SANDBOX_PORT")
    assert port and settings["TMAPI_BASE_URL"] == f"http://127.0.0.1:{port}"
    assert settings["TMAPI_API_TOKEN"] == TOKEN and len(TOKEN) >= 20  # its own, redacted as any token
    assert settings.getwithbase("EXTENSIONS")[SandboxServer] == 0
    assert not settings.getbool("HTTPCACHE_ENABLED")  # `auto`: nothing is paid


def test_the_sandbox_add_on_keeps_a_store_the_user_asked_for() -> None:
    given = Settings(project(TMAPI_CACHE="auto"))
    given.set("TMAPI_SANDBOX", True, priority="cmdline")
    given.set("TMAPI_CACHE", "true", priority="cmdline")
    from tmapi_spiders.sandbox.addon import SandboxAddon

    SandboxAddon.update_pre_crawler_settings(given)
    assert given["TMAPI_CACHE"] == "true"


def test_the_sandbox_add_on_refuses_a_worker_of_a_shared_job() -> None:
    import pytest

    from tmapi_spiders.registry import ConfigError
    from tmapi_spiders.sandbox.addon import SHARED_JOB, SandboxAddon

    given = Settings({"TMAPI_SANDBOX": "true", "REDIS_URL": "redis://127.0.0.1:1/0"})
    with pytest.raises(ConfigError, match="private sandbox in each worker") as info:
        SandboxAddon.update_pre_crawler_settings(given)
    assert str(info.value) == SHARED_JOB


def test_the_sandbox_add_on_leaves_a_users_own_spider_alone() -> None:
    from scrapy import Spider

    class Mine(Spider):
        name = "mine"

    settings = get_crawler(Mine, project(TMAPI_SANDBOX=True)).settings
    assert settings["TMAPI_BASE_URL"] == "https://api.tmapi.io" and not settings.getint("TMAPI_SANDBOX_PORT")


def test_scrapys_records_below_the_log_level_are_not_built(monkeypatch: Any) -> None:
    import logging

    from tmapi_spiders.jobs import quiet_log

    scrapy_logger = logging.getLogger("scrapy")
    before = scrapy_logger.level
    scrapy_logger.setLevel(logging.DEBUG)  # as Scrapy's configure_logging leaves it
    try:
        for level in ("INFO", "DEBUG"):  # Scrapy's handler, at LOG_LEVEL (`-L DEBUG` sees every record)
            monkeypatch.setattr(quiet_log, "get_scrapy_root_handler", lambda level=level: logging.Handler(level))
            get_crawler(ImageSearchSpider, project())
            assert logging.getLogger("scrapy.core.scraper").isEnabledFor(logging.DEBUG) is (level == "DEBUG")
    finally:
        scrapy_logger.setLevel(before)
