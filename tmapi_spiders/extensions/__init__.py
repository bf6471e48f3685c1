"""Scrapy extensions for operators: log redaction, live progress, the run summary, the HTML report.

They are enabled project-wide (EXTENSIONS), so a user's own spider in the project, or
`scrapy shell`/`fetch`/`view` (Scrapy's DefaultSpider), would get them too; progress,
summary and report are about image searches, so they step aside (NotConfigured) for any
spider that is not a TMAPI job. Redaction stays on for every spider: the token must
never reach a log line, whoever wrote it."""

from __future__ import annotations

from scrapy.crawler import Crawler


def for_tmapi_job(crawler: Crawler) -> bool:
    """Whether the crawl is one of ours (a spider class with `tmapi_job = True`)."""
    return bool(getattr(crawler.spidercls, "tmapi_job", False))
