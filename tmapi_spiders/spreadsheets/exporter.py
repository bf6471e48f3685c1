"""The `xlsx` feed format: a crawl's records collected as they are written, the sourcing workbook
(workbook.py) written from them when the feed closes."""

from __future__ import annotations

from typing import IO, Any, Self

from scrapy.crawler import Crawler
from scrapy.exporters import BaseItemExporter

from tmapi_spiders.api.auth import secrets_of
from tmapi_spiders.items import FailureItem
from tmapi_spiders.spreadsheets.sourcing import Choice, Collection


def choice_of_crawler(crawler: Crawler) -> Choice:
    """The choice of this crawl: its spider's job (checked before the crawl started), else the default."""
    job = getattr(crawler.spider, "job", None)
    found = getattr(job, "choice", None)
    return found if isinstance(found, Choice) else Choice()


class XlsxItemExporter(BaseItemExporter):
    """The `xlsx` feed format: the sourcing workbook of the crawl's records, written at
    `finish_exporting`. Failure records (feeds.configure sends them too) and the run summary's
    images give the *best* sheet its reasons."""

    def __init__(self, file: IO[bytes], *, crawler: Crawler | None = None, **kwargs: Any) -> None:
        kwargs.pop("fields_to_export", None)  # the sheets have their own columns
        super().__init__(dont_fail=True, **kwargs)
        self.file = file
        self.crawler = crawler
        self.collection = Collection()

    @classmethod
    def from_crawler(cls, crawler: Crawler, file: IO[bytes], **kwargs: Any) -> Self:
        return cls(file, crawler=crawler, **kwargs)

    def export_item(self, item: Any) -> None:
        record = dict(item)
        if isinstance(item, FailureItem):
            self.collection.add_failure(record)
        else:
            self.collection.add_product(record)

    def finish_exporting(self) -> None:
        # Loaded here: Scrapy loads every FEED_EXPORTERS class at the start of every crawl, and
        # openpyxl takes about 50 ms to import, which only a crawl writing a workbook should pay.
        from tmapi_spiders.spreadsheets.workbook import write

        choice = Choice()
        secrets: list[str] = []
        if self.crawler is not None:
            choice = choice_of_crawler(self.crawler)
            secrets = secrets_of(self.crawler.settings)
            for entry in self._summary_images():
                self.collection.add_result(entry)
        write(self.collection, choice, self.file, "scrapy crawl", secrets)

    def _summary_images(self) -> list[dict[str, Any]]:
        from tmapi_spiders.extensions.summary import TmapiRunSummary

        assert self.crawler is not None
        summary = self.crawler.get_extension(TmapiRunSummary)
        return summary.results.mine() if summary is not None else []
