"""A seed list read lazily as the crawl goes, so a long list never sits whole in memory: each line
checked (a plain URL by a fast path), repeats dropped by a 16-byte digest, and the share of the file read
so far kept for the progress line's estimate. What a stopped crawl never started is listed once, beside
its summary, as a seed list of its own (`list_not_started`)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import logging
import os
import re
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector

from tmapi_spiders.api.identity import DEFAULT_PORTS, image_key
from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.crawl.outputs import SUMMARY_SUFFIX, write_whole
from tmapi_spiders.crawl.seeds import (
    INTERNAL_NAMES,
    INTERNAL_SUFFIXES,
    MAX_URL_LENGTH,
    NUMERIC_HOST,
    BadLine,
    Seed,
    SeedError,
    check_image_url,
)
from tmapi_spiders.crawl.writes import WriteGuard

logger = logging.getLogger(__name__)

# Most lines of a catalogue export: a plain http(s) URL, checked and keyed without urllib (plain_key).
_PLAIN = re.compile(
    r"(https?)://([a-z0-9-]+(?:\.[a-z0-9-]+)+)(?::(80|443))?(/[^\x00-\x20\x7f#@\\\ufffd]*)?(#[^\x00-\x20\x7f\ufffd]*)?",
    re.ASCII | re.IGNORECASE,
)


def plain_key(text: str) -> str | None:
    """The image key of a plain URL check_image_url accepts, without urllib; None: take the full path."""
    match = _PLAIN.fullmatch(text)
    if match is None or len(text) > MAX_URL_LENGTH:
        return None
    scheme, host, port, path, _fragment = match.groups()
    if path and path.endswith("?"):
        return None  # urllib drops a bare trailing "?"
    scheme, host = scheme.lower(), host.lower()
    if port and int(port) != DEFAULT_PORTS[scheme]:
        return None
    if host in INTERNAL_NAMES or host.endswith(INTERNAL_SUFFIXES) or NUMERIC_HOST.fullmatch(host):
        return None
    if host.rpartition(".")[2].isdigit():
        return None
    return f"{scheme}://{host}{path or ''}"


def seed_digest(key: str) -> int:
    """A 16-byte digest of an image key, as an int (small in a list's duplicate set)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest())


def seed_key(text: str, redactor: Redactor | None, suspect: bool) -> tuple[str | None, str]:
    """(the image's key, "") or (None, why the line is bad); a `suspect` line takes the full check."""
    key = None if suspect else plain_key(text)
    if key is not None:
        return key, ""
    reason = check_image_url(text, redactor)
    return (None, reason) if reason else (image_key(text), "")


def parse_lines(lines: Iterable[bytes], redactor: Redactor | None = None) -> Iterator[Seed | BadLine]:
    """Seeds and bad lines in file order: blanks and `#` comments skipped, BOM and CRLF accepted, a repeated
    URL yielded once."""
    seen: set[int] = set()
    for number, raw in enumerate(lines, 1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if len(raw) > MAX_URL_LENGTH * 4:
            yield BadLine(number, f"longer than {MAX_URL_LENGTH} characters")
            continue
        text = raw.decode("utf-8", errors="replace").strip()
        if not text or text.startswith("#"):
            continue
        key, reason = seed_key(text, redactor, redactor is not None and redactor.found_in(text))
        if key is None:
            yield BadLine(number, reason)
            continue
        digest = seed_digest(key)
        if digest in seen:
            continue
        seen.add(digest)
        yield Seed(key, number)  # the canonical spelling is what is searched and recorded


# A line this long is a bad line whatever it holds (parse_lines): its first LINE_LIMIT bytes say so, even
# after the first line's byte-order mark (3 bytes) is taken off.
LINE_LIMIT = MAX_URL_LENGTH * 4 + 4


class LineReader:
    """Lines of a seed file as bytes, counting the bytes read (progress). A line over LINE_LIMIT comes as
    its first LINE_LIMIT bytes and the rest is read past in pieces, so a file without line ends (a
    binary file given by mistake) never sits whole in memory."""

    def __init__(self, path: str) -> None:
        try:
            self.handle = open(path, "rb")  # closed when the lines run out
            self.size = os.fstat(self.handle.fileno()).st_size
        except OSError as exc:
            raise SeedError(f"cannot read urls_file {path!r}: {exc.strerror or exc}") from None
        self.read = 0

    def __iter__(self) -> Iterator[bytes]:
        with self.handle:
            for raw in iter(functools.partial(self.handle.readline, LINE_LIMIT), b""):
                self.read += len(raw)
                if len(raw) == LINE_LIMIT and not raw.endswith(b"\n"):
                    self.skip_line()
                yield raw

    def skip_line(self) -> None:
        """Read past the rest of the current line, a piece at a time."""
        while piece := self.handle.readline(LINE_LIMIT):
            self.read += len(piece)
            if piece.endswith(b"\n"):
                return


@dataclass
class SeedSource:
    """A seed list being read: its entries in order, the file's reader (the share read, for progress), the seeds
    listed so far (`tmapi/images_listed`) and the one read but not started yet."""

    entries: Iterator[Seed | BadLine]
    reader: LineReader | None = None
    listed: int = 0
    held: Seed | None = None  # waiting for room in the scheduler

    def start_held(self, stats: StatsCollector) -> None:
        """The held seed is started: listed (`tmapi/images_listed`), with the share of the file read so far."""
        self.held = None
        self.listed += 1
        if self.reader is not None and self.reader.size:
            stats.set_value("tmapi/seeds_read_fraction", min(1.0, self.reader.read / self.reader.size))
        stats.set_value("tmapi/images_listed", self.listed)

    def read_to_end(self, stats: StatsCollector) -> None:
        """The list's last line is read: its count is known, and progress stops estimating it."""
        stats.set_value("tmapi/images_total", self.listed)
        stats.set_value("tmapi/seed_list_read_at", time.time())

    def unstarted(self, stats: StatsCollector) -> Iterator[Seed]:
        """The seeds a crawl stopped now never started (the held one, then the entries not read yet), read
        once: then `tmapi/images_total` counts the whole list."""
        rest = self.entries if self.held is None else itertools.chain([self.held], self.entries)
        for entry in rest:
            if isinstance(entry, Seed):
                self.listed += 1
                yield entry
            else:
                stats.inc_value("tmapi/seeds_bad_line")
        self.read_to_end(stats)


def text_list(path: str | None, urls: str | None, redactor: Redactor) -> SeedSource:
    """A text seed list (`path`, read as the crawl goes) or `-a urls` (comma-separated); SeedError if unopenable."""
    if not path:
        return SeedSource(parse_lines([part.strip().encode() for part in (urls or "").split(",")], redactor))
    reader = LineReader(path)
    return SeedSource(parse_lines(reader, redactor), reader)


def list_not_started(crawler: Crawler, summary: str) -> dict[str, Any]:
    """List the images the crawl never started beside its summary (`<feed>.not-started.txt`, a seed
    list for the same command): the summary's totals name their number and file; with none, {} and
    an earlier run's list removed."""
    rest = getattr(crawler.spider, "unstarted_seeds", None)
    path = summary.removesuffix(SUMMARY_SUFFIX) + ".not-started.txt"
    seeds = rest() if rest is not None else iter(())
    first = next(seeds, None)
    if first is None:
        with contextlib.suppress(OSError):
            os.remove(path)
        return {}
    assert crawler.stats is not None
    counted = itertools.count()  # zip stops on the seeds' end: it then gives how many were written
    header = f"# not started ({crawler.stats.get_value('finish_reason')}): run the same command again\n"
    urls = (seed.url + "\n" for seed, _ in zip(itertools.chain((first,), seeds), counted, strict=False))
    try:
        write_whole(path, itertools.chain((header,), urls))
    except OSError as exc:
        deque(seeds, maxlen=0)  # read to its end all the same: then tmapi/images_total counts the whole list
        WriteGuard.of(crawler).fail(path, exc)
        return {}
    count = next(counted)
    logger.info("%d images of the list not started: listed in %s", count, path)
    return {"images_not_started": count, "not_started_file": path}
