"""Log redaction: a filter on the log handlers redacts each record's text and traceback, the net
under download.py and the envelope middleware; NotConfigured when there is no token to hide.
"""

from __future__ import annotations

import logging
from typing import Self

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from tmapi_spiders.api.auth import secrets_of
from tmapi_spiders.api.redact import Redactor


class LogRedaction:
    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        redactor = Redactor(secrets_of(crawler.settings))
        if not redactor:
            raise NotConfigured
        # Left on for the rest of the process: the last lines come after the engine has stopped.
        for handler in logging.getLogger().handlers:
            handler.addFilter(redactor)
        return cls()
