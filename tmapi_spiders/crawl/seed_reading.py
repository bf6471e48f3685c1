"""A seed list read lazily as the crawl goes, so a long list never sits whole in memory; the share of
its bytes read so far is the progress line's estimate of how far the list is."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from tmapi_spiders.crawl.seeds import BadLine, Seed, SeedError


class LineReader:
    """Lines of a seed file as bytes, counting the bytes read (progress)."""

    def __init__(self, path: str) -> None:
        try:
            self.handle = open(path, "rb")  # closed when the lines run out
            self.size = os.fstat(self.handle.fileno()).st_size
        except OSError as exc:
            raise SeedError(f"cannot read urls_file {path!r}: {exc.strerror or exc}") from None
        self.read = 0

    def __iter__(self) -> Iterator[bytes]:
        with self.handle:
            for raw in self.handle:
                self.read += len(raw)
                yield raw


@dataclass
class SeedSource:
    """A seed list being read: its entries in order, and the share read (None when its size is unknown)."""

    entries: Iterator[Seed | BadLine]
    reader: LineReader | None = None

    def fraction(self) -> float | None:
        if self.reader is None or not self.reader.size:
            return None
        return min(1.0, self.reader.read / self.reader.size)
