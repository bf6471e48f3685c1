"""`image_search`: image URLs in, one record per matching 1688 offer out (a conversion first for a
non-Alibaba image, then page after page); an image not searched to the end yields one FailureItem."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from functools import cached_property
from typing import Any, Self

from scrapy import Request, Spider
from scrapy import signals as scrapy_signals
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import CloseSpider, DownloadCancelledError, IgnoreRequest
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from tmapi_spiders import registry, signals
from tmapi_spiders.api import contract, requests
from tmapi_spiders.api.auth import ApiRefused
from tmapi_spiders.api.paging import ChainState, Step, empty_page_message, paginate
from tmapi_spiders.api.redact import MASK
from tmapi_spiders.api.requests import ENDPOINT_CONVERT, ENDPOINT_SEARCH, META_KEY, envelope_of
from tmapi_spiders.clock import utc_now
from tmapi_spiders.crawl.config import check_seed_list, check_settings, job_config
from tmapi_spiders.crawl.seed_reading import SeedSource
from tmapi_spiders.crawl.seeds import BAD_LINES_LOGGED, BadLine, Seed, SeedError
from tmapi_spiders.items import CONTEXT_FIELDS, FailureItem, ProductItem
from tmapi_spiders.jobs import backends

logger = logging.getLogger(__name__)

BAD_SEED_LIST = "tmapi_bad_seed_list"  # outcome.BAD_INPUT
CANCELLED = "download cancelled: the answer grew past DOWNLOAD_MAXSIZE, or the crawl was stopping"
# Record fields the crawl adds: an API field under one of these names is kept as `api_<name>`.
ADDED_FIELDS = ("input", "input_row", "converted")
_CONTEXT_FIELD_SET = frozenset((*CONTEXT_FIELDS, *ADDED_FIELDS))


class ImageSearchSpider(Spider):
    name = "image_search"
    tmapi_job = True  # `scrapy crawl` checks arguments, settings and seeds first

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args)  # the arguments are the job's (from_crawler), not attributes

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        # Seed lines carrying the token are bad lines; seeds are checked below unless distributed.
        spider.job = job_config(kwargs, settings, need_seeds=False)
        check_settings(settings)
        spider.stopping = ""  # why no new image is started (signals.stop_starting)
        spider.seed_reading: SeedSource | None = None
        spider.list_broken = False
        crawler.signals.connect(spider._stop_starting, signal=signals.stop_starting)
        crawler.signals.connect(spider._idle, signal=scrapy_signals.spider_idle)
        # A worker of a shared job may run without a list: its seeds come from the job.
        if not backends.shared(settings) or spider.job.urls_file or spider.job.urls:
            check_seed_list(spider.job)
        spider.stop_on_short_page = registry.read(settings, "TMAPI_STOP_ON_SHORT_PAGE")
        spider.empty_page_retries = registry.read(settings, "TMAPI_EMPTY_PAGE_RETRIES")
        return spider

    async def start(self) -> AsyncIterator[Any]:
        """The list read as the crawl goes; `tmapi/images_total` is set once its last line is read."""
        stats = self.crawler.stats
        source = self.seed_reading = self.job.read_seeds()
        bad = 0
        try:
            for entry in source.entries:
                if isinstance(entry, BadLine):
                    bad += 1
                    stats.inc_value("tmapi/seeds_bad_line")
                    if bad <= BAD_LINES_LOGGED:
                        logger.warning(entry.skipped(self.job.seed_source, self.job.seed_unit))
                    elif bad == BAD_LINES_LOGGED + 1:
                        logger.warning("more bad seed lines: counted in stats (tmapi/seeds_bad_line), not logged")
                    continue
                source.held = entry
                # Held while the downloader is full (Scrapy's lazy start): a long list never sits whole in memory.
                if self.crawler.engine.needs_backout() and not self.stopping:
                    await self.crawler.signals.wait_for(scrapy_signals.scheduler_empty)
                if self.stopping:
                    return  # the held seed and the rest of the list: unstarted_seeds()
                source.start_held(stats)
                yield self.first_request(entry, self.job.query, self.job.max_pages)
        except SeedError as exc:
            self.list_broken = True
            stats.set_value("tmapi/images_total", source.listed)
            logger.error("Stopping: %s (%d images of the list were started before it)", exc, source.listed)
            return  # the images started finish; then _idle closes the crawl with BAD_SEED_LIST
        source.read_to_end(stats)

    def _idle(self) -> None:
        if self.list_broken:
            raise CloseSpider(BAD_SEED_LIST)

    def _stop_starting(self, reason: str) -> None:
        self.stopping = self.stopping or reason

    def unstarted_seeds(self) -> Iterator[Seed]:
        """The searchable entries this run never started (SeedSource.unstarted), listed once."""
        stats = self.crawler.stats
        source, self.seed_reading = self.seed_reading, None
        if self.list_broken:
            return  # not readable past where it broke
        if source is None:
            if stats.get_value("tmapi/images_total") or not (self.job.urls_file or self.job.urls):
                return
            source = self.job.read_seeds()  # closed before start() read a line
        yield from source.unstarted(stats)

    def first_request(self, seed: Seed, query: contract.SearchQuery, max_pages: int) -> Request:
        """The first paid call for one image: a conversion, or page 1 of the search."""
        self.crawler.stats.inc_value("tmapi/images_seeded")
        state = ChainState(image=seed.url, img=seed.url, q=query.to_dict(), max_pages=max_pages)
        if seed.input is not None:
            state.input, state.input_row = seed.input, seed.line
        if contract.is_alibaba_hosted(seed.url):
            return self._search(state)
        return requests.convert(self.base_url, state, self.parse_converted, self.on_error)

    @cached_property
    def base_url(self) -> str:
        """Read at the first request: add-ons settle the base URL after the spider is created."""
        return registry.read(self.settings, "TMAPI_BASE_URL").rstrip("/")

    def _search(self, state: ChainState) -> Request:
        return requests.search(self.base_url, state, self.parse_search, self.on_error)

    def parse_converted(self, response: Response) -> Iterator[Any]:
        state = ChainState.from_meta(response.meta[META_KEY])
        envelope = envelope_of(response)
        if not envelope.ok:
            yield self.failure(state, ENDPOINT_CONVERT, envelope.status, envelope.message)
            return
        assert envelope.data is not None
        path = envelope.data.get("image_url")
        if not isinstance(path, str) or not path.startswith(("/", "http")):
            problem = f"conversion returned no image_url ({path!r})"
        elif MASK in path:
            # The answer quoted the token (redacted on arrival): not a path anything can search.
            problem = "conversion returned an image_url holding the API token"
        else:
            self.crawler.stats.inc_value("tmapi/images_converted")
            yield self._search(replace(state, img=path, converted=True, page=1))
            return
        yield self.failure(state, ENDPOINT_CONVERT, contract.UNEXPECTED, problem)

    def parse_search(self, response: Response) -> Iterator[Any]:
        state = ChainState.from_meta(response.meta[META_KEY])
        envelope = envelope_of(response)
        if not envelope.ok:
            if envelope.status == contract.PARAM_ERROR and not state.converted and state.page == 1:
                if state.image.startswith(("http://", "https://")):
                    # The API could not use the image as it is: convert it and search again.
                    yield requests.convert(self.base_url, state, self.parse_converted, self.on_error)
                    return
            yield self.failure(state, ENDPOINT_SEARCH, envelope.status, envelope.message)
            return
        assert envelope.data is not None
        page_size = state.q["page_size"]
        step = paginate(state, envelope.data, page_size, self.stop_on_short_page)
        if step.failure:
            yield self.failure(state, ENDPOINT_SEARCH, contract.UNEXPECTED, step.failure)
            return
        if step.promised_empty and (state.page == 1 or state.empty_asks < self.empty_page_retries):
            # A later page still empty after its re-asks ends the image; page 1 empty is a failure.
            yield self._empty_page(response, state, step, envelope.data.get("total_count"))
            return
        stats = self.crawler.stats
        stats.inc_value("tmapi/pages")
        if step.not_objects:
            stats.inc_value("tmapi/items_dropped/not_an_object", step.not_objects)
            stats.inc_value("tmapi/items_dropped", step.not_objects)
        if step.duplicates:
            stats.inc_value("tmapi/items_duplicate", step.duplicates)
        if state.page == 1:
            stats.inc_value("tmapi/pages_expected", step.expected_pages)
            assert step.state.total is not None
            stats.inc_value("tmapi/items_expected", min(step.state.total, step.expected_pages * page_size))
        context = record_context(state, page=state.page)
        for rank, raw in step.new_items:
            product = ProductItem(raw)
            normalise(product)
            if not _CONTEXT_FIELD_SET.isdisjoint(product):
                for name in product.keys() & _CONTEXT_FIELD_SET:  # an API field under one of our names: kept, renamed
                    product[f"api_{name}"] = product[name]
            product.update(context)
            product["rank"] = rank
            if self.job.currency is not None:
                product["converted"] = self.job.currency.convert(product)
            yield product
        if step.next is not None:
            yield self._search(step.next)
            return
        stats.inc_value("tmapi/images_searched")
        if step.below_total:
            stats.inc_value("tmapi/images_below_total")
            stats.inc_value(f"tmapi/images_below_total/{step.end}")
        self._finished(step.state, "done", "", pages=state.page, ended=step.end or "")

    def _empty_page(self, response: Response, state: ChainState, step: Step, total: Any) -> Request | FailureItem:
        """An empty page total_count promised items on: asked again TMAPI_EMPTY_PAGE_RETRIES times through
        Scrapy's retry, then a failure record."""
        stats = self.crawler.stats
        request = response.request
        if request is not None and state.empty_asks < self.empty_page_retries:
            tries = int(request.meta.get("retry_times", 0))
            again = get_retry_request(request, spider=self, reason="empty_page", max_retry_times=tries + 1)
            if again is not None:
                stats.inc_value("tmapi/empty_page_retry/count")
                again.meta[META_KEY] = replace(state, empty_asks=state.empty_asks + 1).to_meta()
                return again
        stats.inc_value("tmapi/empty_page_retry/max_reached")
        message = empty_page_message(state.page, total, state.empty_asks + 1, state.items)
        return self.failure(step.state, ENDPOINT_SEARCH, contract.UNEXPECTED, message)

    def on_error(self, failure: Failure) -> Iterator[Any]:
        request = failure.request  # type: ignore[attr-defined]
        state = request.meta[META_KEY]
        stage = request.meta.get("tmapi_endpoint", ENDPOINT_SEARCH)
        if failure.check(HttpError):
            envelope = envelope_of(failure.value.response)
            status, message = envelope.status, envelope.message
        elif failure.check(ApiRefused):
            status, message = failure.value.status, str(failure.value)
        elif failure.check(IgnoreRequest):
            status, message = 0, str(failure.value) or "request ignored"
        elif failure.check(DownloadCancelledError):
            # Scrapy cancels a body that grows past DOWNLOAD_MAXSIZE (and says so only in a warning)
            status, message = 0, f"DownloadCancelledError: {failure.getErrorMessage() or CANCELLED}"
        else:
            status, message = 0, f"{failure.type.__name__}: {failure.getErrorMessage()}"
        yield self.failure(state, stage, status, message)

    def failure(self, state: ChainState | dict[str, Any], stage: str, status: int, message: str) -> FailureItem:
        """The failure record of an image, and its image_finished signal (`state` may be a meta dict)."""
        state = ChainState.from_meta(state)
        self.crawler.stats.inc_value("tmapi/images_failed")
        self.crawler.stats.inc_value(f"tmapi/images_failed/{stage}/{status}")
        pages_ok = state.page - 1 if stage == ENDPOINT_SEARCH else 0
        self._finished(state, "failed", message, pages=pages_ok)
        failed_page = state.page if stage == ENDPOINT_SEARCH else None
        fields = dict(stage=stage, status=status, message=message, pages_ok=pages_ok, failed_page=failed_page)
        return FailureItem(record_context(state, **fields))

    def _finished(self, state: ChainState, status: str, reason: str, pages: int, ended: str = "") -> None:
        self.crawler.signals.send_catch_log(
            signals.image_finished,
            image={"query_image_url": state.image, "status": status, "reason": reason, "total_count": state.total}
            | {"pages": pages, "items": state.items, "duplicates": state.dups, "ended": ended},
        )


def normalise(record: dict[str, Any]) -> None:
    """Titles with their whitespace collapsed and protocol-relative URLs as https, as the API means them;
    prices keep the API's exact strings."""
    for name in ("title", "title_origin"):
        if isinstance(value := record.get(name), str):
            record[name] = " ".join(value.split())
    for where, name in ((record, "product_url"), (record, "img"), (record.get("shop_info"), "shop_url")):
        if isinstance(where, dict) and isinstance(value := where.get(name), str) and value.startswith("//"):
            where[name] = "https:" + value


def record_context(state: ChainState, **fields: Any) -> dict[str, Any]:
    """What every record of an image says of its search, `fields` after the two image URLs (the feeds'
    column order); a spreadsheet row's input last."""
    q = state.q
    context = {"query_image_url": state.image, "search_image_url": state.img, **fields}
    context.update(language=q["language"], sort=q["sort"], filters=q["filters"], crawled_at=utc_now())
    if state.input is not None:
        context.update(input=state.input, input_row=state.input_row)
    return context
