"""Log redaction: a filter on the log handlers redacts each record's text and traceback, the net
under download.py and the envelope middleware; NotConfigured when there is no token to hide.
"""

from __future__ import annotations

import logging
from typing import Self

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from tmapi_spiders.api.auth import secrets_of
from tmapi_spiders.api.redact import Redactor


class LogRedaction:
    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        redactor = Redactor(secrets_of(crawler.settings))
        if not redactor:
            raise NotConfigured
        extension = cls(redactor)
        extension.install()
        # `Crawler.crawl` replaces Scrapy's root handler once the extensions are built (a new handler for the
        # crawler's settings, without this filter): the filter goes on the handlers in place again at open.
        crawler.signals.connect(extension.install, signal=signals.spider_opened)
        return extension

    def install(self) -> None:
        """The filter on every root log handler, left on for the rest of the process: the last lines come
        after the engine has stopped (adding it twice to one handler keeps one)."""
        for handler in logging.getLogger().handlers:
            handler.addFilter(self.redactor)
