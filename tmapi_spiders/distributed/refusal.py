"""A request the job cannot queue becomes its image's failure record (a `Worker` mixin).

The worker's one use of the
crawler's item path. A request whose JSON would carry the token, or whose meta is not JSON,
is refused by the scheduler; its image must still end with a record, and the lease it
replaces must be acknowledged once that record is written.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy import Request, Spider
from scrapy.crawler import Crawler

from tmapi_spiders import inspection
from tmapi_spiders.api import ENDPOINT_SEARCH, META_KEY
from tmapi_spiders.redact import Redactor

logger = logging.getLogger("tmapi_spiders.distributed.worker")  # one logger for the worker's lines


class FailureRecords:
    """The refusal half of `Worker` (a mixin: `Worker` sets these attributes)."""

    crawler: Crawler
    spider: Spider | None
    redactor: Redactor
    leases: dict[str, Request | None]
    finished: set[str]

    def refused(self, request: Request, handover: str | None, reason: str) -> None:
        """A request the job cannot queue (it carries the token, its meta is not JSON).

        Its image gets a failure record through the crawler's item path (pipelines, the
        failures feed, the summary), and the lease it replaces (a seed's, a retry's) is
        acknowledged once that record is written: it was renewed forever before, so the job
        never drained, and Ctrl-C gave it back to be refused again. A follow-up page has no
        lease of its own: the page that asked for it is acknowledged as usual."""
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value("tmapi/redis/refused")
        if handover:
            self.leases[handover] = None  # still renewed, and given back if we stop before the record is out

        def release(_: Any = None) -> None:
            if handover and handover in self.leases:
                self.leases[handover] = request
                self.finished.add(handover)  # done: the next ack tick acknowledges it

        item = self._failure_item(request, reason)
        written = inspection.start_itemproc(self.crawler.engine, item) if item is not None else None
        if written is None:
            release()
            return
        written.addBoth(release)

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
