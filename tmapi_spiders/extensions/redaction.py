"""Log redaction: a filter on the log handlers redacts each record's text and traceback, the net
under download.py and the envelope middleware; NotConfigured when there is no token to hide.
"""

from __future__ import annotations

from typing import Self

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from tmapi_spiders.api.auth import secrets_of
from tmapi_spiders.api.redact import RedactingFilter, Redactor, install_log_filter


class LogRedaction:
    def __init__(self, crawler: Crawler) -> None:
        redactor = Redactor(secrets_of(crawler.settings))
        if not redactor:
            raise NotConfigured
        # Left on for the rest of the process: the last lines come after the engine has stopped.
        self.filter: RedactingFilter | None = install_log_filter(redactor)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)
