"""A request the job cannot queue becomes its image's failure record (a `Worker` mixin).

A request whose JSON would carry the token, or whose meta is not JSON, is refused by the
scheduler; its image must still end with a record, and the lease it replaces must be
acknowledged once that record is written. A scheduler cannot yield items, so the record
takes the path of every other record: the scheduler keeps, in this process only (never
in Redis), a `data:` request (Scrapy's data: download handler: no network, no paid call)
whose callback yields the failure record. It goes through the pipelines and the feeds, and
tmapi_spiders/crawl/done.py marks its lease done once the record is through.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.http import Response
from twisted.python.failure import Failure

from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.api.requests import ENDPOINT_SEARCH, META_KEY
from tmapi_spiders.distributed.health import LEASE_META

logger = logging.getLogger("tmapi_spiders.distributed.worker")  # one logger for the worker's lines

REFUSED_META = "tmapi_refused"  # on the local data: request that carries a refused request's record


class _Record:
    """The callback (and errback) of a refused request's `data:` request: its one record."""

    def __init__(self, item: Any) -> None:
        self.item = item

    def __call__(self, _: Response | Failure) -> Iterator[Any]:
        yield self.item


class FailureRecords:
    """The refusal half of `Worker` (a mixin: `Worker` sets these attributes)."""

    crawler: Crawler
    spider: Spider | None
    redactor: Redactor
    leases: dict[str, Request | None]
    finished: set[str]
    records: list[Request]  # data: requests of failure records, for the scheduler to hand out first

    def refused(self, request: Request, handover: str | None, reason: str) -> None:
        """A request the job cannot queue (it carries the token, its meta is not JSON).

        Its image gets a failure record through the crawler's item path (pipelines, the
        failures feed, the summary), and the lease it replaces (a seed's, a retry's) is
        acknowledged once that record is written; until then it is renewed, and given back
        if the worker stops first. A follow-up page has no lease of its own: the page that
        asked for it is acknowledged as usual."""
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value("tmapi/redis/refused")
        item = self._failure_item(request, reason)
        if item is None:
            if handover:
                self.leases[handover] = request
                self.finished.add(handover)  # nothing to write: done, the next ack tick acknowledges it
            return
        record = _Record(item)
        local = Request("data:,", callback=record, errback=record, dont_filter=True, meta={REFUSED_META: True})
        if handover:
            local.meta[LEASE_META] = handover
            self.leases[handover] = local  # done.py's request_done for `local` acknowledges it
        self.records.append(local)

    def _failure_item(self, request: Request, reason: str) -> Any:
        """The spider's own failure record for the refused request's image, token redacted
        (None when the request is not an image search's)."""
        state = request.meta.get(META_KEY)
        failure = getattr(self.spider, "failure", None)
        if not isinstance(state, dict) or failure is None:
            logger.error("A refused request without an image: no failure record (%s)", self.redactor.text(reason))
            return None
        stage = request.meta.get("tmapi_endpoint") or ENDPOINT_SEARCH
        try:
            return failure(self.redactor.value(state), stage, 0, self.redactor.text(reason))
        except (KeyError, TypeError, ValueError) as exc:
            logger.error("No failure record for a refused request (%s): %s", exc, self.redactor.text(reason))
            return None
