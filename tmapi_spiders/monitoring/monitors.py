"""The monitors Spidermon runs when a crawl closes, on the crawl's own stats.

Each reads counters the crawl keeps anyway (docs/settings.md for the thresholds):
`finish_reason`, `tmapi/images_failed`, `tmapi/items` against `tmapi/items_expected`
(what page 1's total_count promised, within max_pages), `tmapi/paid_calls` against
TMAPI_MAX_CALLS, and `tmapi/pages` against `tmapi/pages_expected`: a page fetched beyond
what total_count promised, or twice, makes `pages` exceed it. In a distributed job each
worker's stats hold only its share (page 1 of an image on one worker, its later pages on
others), so the two promise monitors are skipped there and the job's summary is the
place to look.
"""

from __future__ import annotations

from typing import Any

from scrapy.utils.misc import load_object
from spidermon import Monitor, MonitorSuite, monitors
from spidermon.contrib.scrapy.monitors import ItemValidationMonitor

from tmapi_spiders.monitoring import alert_actions


class _StatsMonitor(Monitor):
    def stat(self, name: str) -> Any:
        return self.data.stats.get(name, 0) or 0

    def setting(self, name: str, default: Any = None) -> Any:
        return self.data.crawler.settings.get(name, default)

    def distributed(self) -> bool:
        return bool(self.data.crawler.settings.get("REDIS_URL"))


@monitors.name("tmapi")
class TmapiMonitor(_StatsMonitor):
    @monitors.name("finished cleanly")
    def test_finished_cleanly(self) -> None:
        reason = self.data.stats.get("finish_reason")
        self.assertEqual(reason, "finished", msg=f"the crawl ended with finish reason {reason!r}, not 'finished'")

    @monitors.name("failed images within threshold")
    def test_failed_images(self) -> None:
        failed = self.stat("tmapi/images_failed")
        allowed = int(self.setting("TMAPI_MONITOR_MAX_FAILED_IMAGES", 0))
        self.assertLessEqual(
            failed, allowed, msg=f"{failed} images failed (TMAPI_MONITOR_MAX_FAILED_IMAGES allows {allowed})"
        )

    @monitors.name("records near what total_count promised")
    def test_records_per_image(self) -> None:
        expected = self.stat("tmapi/items_expected")
        if self.distributed() or not expected:
            self.skipTest("no promise counted in this process")
        written = self.stat("tmapi/items")
        ratio = float(self.setting("TMAPI_MONITOR_MIN_RECORDS_RATIO", 0.9))
        self.assertGreaterEqual(
            written,
            ratio * expected,
            msg=f"{written} records written where total_count promised {expected}"
            f" (TMAPI_MONITOR_MIN_RECORDS_RATIO {ratio})",
        )

    @monitors.name("paid calls within the cap")
    def test_paid_calls_within_cap(self) -> None:
        cap = int(self.setting("TMAPI_MAX_CALLS", 0) or 0)
        if not cap:
            self.skipTest("no TMAPI_MAX_CALLS")
        paid = self.stat("tmapi/paid_calls")
        self.assertLessEqual(paid, cap, msg=f"{paid} calls paid, TMAPI_MAX_CALLS is {cap}")

    @monitors.name("no page paid twice")
    def test_no_page_paid_twice(self) -> None:
        if self.distributed():
            self.skipTest("a worker's stats hold only its share of each image's pages")
        pages, expected = self.stat("tmapi/pages"), self.stat("tmapi/pages_expected")
        self.assertLessEqual(
            pages, expected, msg=f"{pages} pages fetched where total_count promised {expected}: some paid twice"
        )


class TmapiMonitorSuite(MonitorSuite):
    """Our monitors and Spidermon's item validation monitor; alerts only where configured."""

    monitors = [TmapiMonitor, ItemValidationMonitor]

    def __init__(self, *args: Any, crawler: Any = None, **kwargs: Any) -> None:
        actions = [load_object(path) for path in alert_actions(crawler.settings)] if crawler is not None else []
        kwargs["monitors_failed_actions"] = [*(kwargs.get("monitors_failed_actions") or []), *actions]
        super().__init__(*args, crawler=crawler, **kwargs)
