"""Failed writes stop the crawl: the crawler's `WriteGuard` and the local feed storages that report to it
(a failed feed write is one line, the spider closed with `tmapi_write_failed`, exit 7, and nothing counted
done from then on)."""

from __future__ import annotations

import io
import logging
import os
import weakref
from pathlib import Path
from typing import IO, Any

from scrapy import Spider
from scrapy.crawler import Crawler
from scrapy.extensions.feedexport import FileFeedStorage
from scrapy.utils.defer import deferred_from_coro

logger = logging.getLogger(__name__)

WRITE_FAILED_REASON = "tmapi_write_failed"  # outcome.WRITE_FAILED

_guards: weakref.WeakKeyDictionary[Crawler, WriteGuard] = weakref.WeakKeyDictionary()


class WriteFailed(OSError):
    """Raised by `store()` so that Scrapy's feed exporter reports the feed as not stored."""


class WriteGuard:
    """The crawler's record of its local output files and of the first write that failed."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.failed: str | None = None  # "<path>: <cause>" of the first failed write
        self.files: weakref.WeakSet[io.BufferedWriter] = weakref.WeakSet()

    @classmethod
    def of(cls, crawler: Crawler) -> WriteGuard:
        return _guards.get(crawler) or _guards.setdefault(crawler, cls(crawler))

    def fail(self, path: str, exc: OSError) -> None:
        """A write to `path` failed: stop the crawl, once; nothing counts as done from now on."""
        stats = self.crawler.stats
        if stats is not None:
            stats.inc_value("tmapi/write_failed")
        if self.failed is not None:
            return
        cause = os.strerror(exc.errno) if exc.errno else str(exc)
        self.failed = f"{path}: {cause}"
        logger.error(
            "Could not write %s (%s): stopping; records not written are not counted done"
            " (run the same command again once it can be written)",
            path,
            cause,
        )
        engine = self.crawler.engine
        if engine is not None and engine.spider is not None and engine.running:
            deferred_from_coro(engine.close_spider_async(reason=WRITE_FAILED_REASON))

    def flush(self) -> bool:
        """Push the local feeds' buffered bytes to the kernel; False when a write has ever failed."""
        for file in list(self.files):
            if not file.closed:
                file.flush()  # a failed write reaches the guard, not here
        return self.failed is None


class _CheckedFile(io.FileIO):
    """An unbuffered file whose failed write goes to the guard, not the caller; later writes are discarded."""

    def __init__(self, path: str, mode: str, guard: WriteGuard) -> None:
        self.guard = guard
        super().__init__(path, mode)

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        size = len(view)
        if self.guard.failed is not None:
            return size
        try:
            while view:  # a regular file takes all at once; anything else may take less
                written = super().write(view)
                view = view[written or 0 :]
                if not written:
                    raise OSError(0, "the file took no bytes")
        except OSError as exc:
            self.guard.fail(self.name, exc)
        return size

    def close(self) -> None:
        try:
            super().close()
        except OSError as exc:
            self.guard.fail(self.name, exc)


class CheckedFileFeedStorage(FileFeedStorage):
    """Scrapy's local file storage, its writes checked by the crawler's `WriteGuard`."""

    buffered = True

    def open(self, spider: Spider) -> IO[bytes]:
        self.guard = guard = WriteGuard.of(spider.crawler)
        path = Path(self.path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            guard.fail(str(path.parent), exc)
        try:
            raw = _CheckedFile(str(path), self.write_mode, guard)
        except OSError as exc:
            guard.fail(self.path, exc)
            raw = _CheckedFile(os.devnull, "ab", guard)  # the crawl is stopping: a place to discard into
        if not self.buffered:
            return raw
        buffered = io.BufferedWriter(raw)
        guard.files.add(buffered)
        return buffered

    def store(self, file: IO[bytes]) -> None:
        file.close()
        if self.guard.failed is not None:
            raise WriteFailed(f"not stored: {self.guard.failed}")


class UnbufferedFileFeedStorage(CheckedFileFeedStorage):
    """For distributed workers: every line reaches the kernel, so a `kill -9` loses no acknowledged record."""

    buffered = False


def _no_traceback(record: logging.LogRecord) -> bool:
    """Scrapy's "Error storing ... feed" line without a traceback for a `WriteFailed` (already logged)."""
    exc = record.exc_info[1] if record.exc_info else None
    if isinstance(exc, WriteFailed):
        record.msg = f"{record.msg} ({exc})"
        record.exc_info = None
        record.exc_text = None
    return True


logging.getLogger("scrapy.extensions.feedexport").addFilter(_no_traceback)
