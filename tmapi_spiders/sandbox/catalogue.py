"""A deterministic synthetic 1688 catalogue: one result set per image, built lazily.

Every item is a pure function of the image's identity and its position, so the same
request always gets the same bytes, different images get different sets, and an item is
only rendered (items.py) when a page shows it. Sorting and filtering need only a few
numbers per item (its "core"), computed on demand from the same random bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from urllib.parse import parse_qs, urlsplit

from tmapi_spiders.sandbox import spec
from tmapi_spiders.sandbox.items import DIGEST_SIZE, TITLE_HEADS, add_item, core

# Generated catalogues hold at most this many items; a larger `total=N` hint is capped.
MAX_TOTAL = 10_000
# Converted images: /search/imgextra/<identity>[_total-N].jpg
CONVERTED_DIR = spec.CONVERTED_PREFIX + "imgextra/"
_CONVERTED_RE = re.compile(r"^/search/imgextra/([0-9a-f]{24})(?:_total-\d+)?\.jpg$")
_TOTAL_SEGMENT_RE = re.compile(r"(?:^|[/_.\-])total-(\d+)(?=$|[/_.\-?#])")
# Items whose random bytes come from one hash call: a default page of 20 needs one call.
BLOCK = 20


# ---------------------------------------------------------------------------------------
# Image identity and the item count.
def identity_of(img_url: str) -> str:
    """The hash that seeds an image's catalogue; a converted path keeps its source's identity."""
    match = _CONVERTED_RE.match(img_url)
    if match:
        return match.group(1)
    return hashlib.sha256(img_url.encode()).hexdigest()[:24]


def total_hint(url: str) -> int | None:
    """A forced item count: `total=N` in the image URL's query, or `total-N` in its path."""
    parts = urlsplit(url)
    values = parse_qs(parts.query).get("total")
    if values and values[0].isdigit():
        return min(int(values[0]), MAX_TOTAL)
    match = _TOTAL_SEGMENT_RE.search(parts.path)
    if match:
        return min(int(match.group(1)), MAX_TOTAL)
    return None


def converted_path(url: str) -> str:
    """The stable path that the conversion API answers for `url` (keeps a total hint)."""
    hint = total_hint(url)
    suffix = f"_total-{hint}" if hint is not None else ""
    return f"{CONVERTED_DIR}{identity_of(url)}{suffix}.jpg"


def natural_total(identity: str) -> int:
    """The item count when none is forced: 0..400 from a mixture that hits the edge cases
    (empty results, exact multiples of 20, one item over a multiple) often."""
    h = int(identity[:12], 16)
    kind, rest = h % 20, h // 20
    if kind < 2:  # 10 %: nothing found
        return 0
    if kind < 5:  # 15 %: an exact multiple of 20
        return 20 * (1 + rest % 20)
    if kind < 8:  # 15 %: one over a multiple of 20
        return 20 * (rest % 20) + 1
    return 1 + rest % 400  # 60 %: anything


@lru_cache(maxsize=1 << 16)
def catalogue_key(img_url: str) -> tuple[str, int]:
    """(identity, item count) of an image URL; memoised because every page of an image asks."""
    identity = identity_of(img_url)
    hint = total_hint(img_url)
    return identity, hint if hint is not None else natural_total(identity)


class Catalogue:
    """The result set for one image identity: item i is a pure function of (identity, i).

    Rendered items are not kept: rendering one from the shared pools costs about as much
    as keeping it would in memory traffic, and a server holding a thousand images stays small.
    """

    __slots__ = ("_cores", "_views", "identity", "item_base", "key", "total")

    def __init__(self, identity: str, total: int) -> None:
        self.identity = identity
        self.total = total
        self.key = bytes.fromhex(identity)
        self.item_base = int(identity[12:24], 16)
        self._cores: tuple[list[int], list[int], list[int]] | None = None
        self._views: dict[tuple[str, int], list[int]] = {}

    def _block(self, number: int) -> bytes:
        """The random bytes of items BLOCK*number .. BLOCK*(number+1)-1: one hash call."""
        return hashlib.shake_256(self.key + number.to_bytes(4, "big")).digest(BLOCK * DIGEST_SIZE)

    def _digests(self, indices: Sequence[int]) -> list[bytes]:
        blocks: dict[int, bytes] = {}
        out = []
        for index in indices:
            number, offset = divmod(index, BLOCK)
            block = blocks.get(number)
            if block is None:
                block = blocks[number] = self._block(number)
            offset *= DIGEST_SIZE
            out.append(block[offset : offset + DIGEST_SIZE])
        return out

    def item_id(self, index: int) -> int:
        # Distinct for every index of one catalogue: 7919 is prime and does not divide 9e11.
        return 100_000_000_000 + (self.item_base + index * 7919) % 900_000_000_000

    def cores(self) -> tuple[list[int], list[int], list[int]]:
        """Prices, sales and filter masks of every item, for sorted or filtered views."""
        if self._cores is None:
            cores = [core(d) for d in self._digests(range(self.total))]
            self._cores = ([c[0] for c in cores], [c[1] for c in cores], [c[2] for c in cores])
        return self._cores

    def view(self, sort: str, mask: int) -> Sequence[int]:
        """Item indices in `sort` order, keeping only items having every attribute in `mask`."""
        if sort == "default" and mask == 0:
            return range(self.total)
        cached = self._views.get((sort, mask))
        if cached is not None:
            return cached
        cents, sales, masks = self.cores()
        indices = [i for i in range(self.total) if masks[i] & mask == mask] if mask else list(range(self.total))
        if sort != "default":
            # One int per item: the sort value above the item_id (ties go by item_id, ascending).
            values = {"sales": [-v for v in sales], "price_up": cents, "price_down": [-v for v in cents]}[sort]
            item_id = self.item_id
            indices.sort(key=lambda i: values[i] * 10**12 + item_id(i))
        self._views[(sort, mask)] = indices
        return indices

    def fragments(self, indices: Sequence[int], language: str) -> list[bytes]:
        """The JSON pieces of items `indices` in `language`, comma-separated, ready to join."""
        titles = TITLE_HEADS[language]
        base = self.item_base
        parts: list[bytes] = []
        for index, d in zip(indices, self._digests(indices), strict=True):
            parts.append(b",")
            add_item(parts, d, 100_000_000_000 + (base + index * 7919) % 900_000_000_000, titles)  # self.item_id
        return parts[1:]

    def fragment(self, index: int, language: str) -> bytes:
        """Item `index` as JSON in `language`."""
        return b"".join(self.fragments((index,), language))


class CatalogueCache:
    """A bounded LRU of catalogues, so a page costs slicing and joining, not generating."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[tuple[str, int], Catalogue] = OrderedDict()

    def get(self, img_url: str) -> Catalogue:
        key = catalogue_key(img_url)
        cat = self._data.get(key)
        if cat is None:
            cat = self._data[key] = Catalogue(*key)
            if len(self._data) > self.size:
                self._data.popitem(last=False)
        else:
            self._data.move_to_end(key)
        return cat

    def clear(self) -> None:
        self._data.clear()
