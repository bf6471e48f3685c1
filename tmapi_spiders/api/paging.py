"""One image's search, page after page: `ChainState` (plain JSON in `meta["tmapi"]`, so a Redis
queue can carry it) and `paginate`, which reads one answer: new items, the next page, or why it ended."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from tmapi_spiders.api import contract

NO_TOTAL = "response data has no total_count or items"
EMPTY_PROMISED = "empty page while total_count says more"


@dataclass
class ChainState:
    """Where one image's search stands: the image, the query, the page to fetch next, what pages held."""

    image: str  # the seed's URL (the query image)
    img: str  # what is searched: the same URL, or the converted /search/... path
    q: dict[str, Any]  # contract.SearchQuery.to_dict()
    page: int = 1
    max_pages: int = 0  # 0: up to total_count
    converted: bool = False
    seen: list[int] = field(default_factory=list)
    total: int | None = None  # total_count of the first page
    items: int = 0  # new items kept so far
    dups: int = 0  # items repeated from earlier pages
    prev_short: bool = False  # the page before held fewer items than the page size
    empty_asks: int = 0  # times this page came back empty while total_count promised items on it
    # The spreadsheet row the image came from, and its number, for every record; None for a text list.
    input: dict[str, Any] | None = None
    input_row: int | None = None

    def to_meta(self) -> dict[str, Any]:
        meta = dict(vars(self))
        if self.input is None:  # a text list's requests stay small
            del meta["input"], meta["input_row"]
        return meta

    @classmethod
    def from_meta(cls, meta: dict[str, Any] | ChainState) -> ChainState:
        if isinstance(meta, ChainState):
            return meta
        given = {f.name: meta[f.name] for f in fields(cls) if f.name in meta}
        given.setdefault("img", meta["image"])
        given["seen"] = list(given.get("seen", ()))
        return cls(**given)


@dataclass
class Step:
    """What one answer means for its image."""

    new_items: list[tuple[int, dict[str, Any]]]  # (rank, the API's item) for each new item
    not_objects: int  # entries of `items` that are not objects (dropped)
    duplicates: int  # items already seen on an earlier page
    state: ChainState  # the state after this page
    next: ChainState | None  # the next page to fetch, or None
    end: str | None  # why the image is finished (None while there is a next page): end_of_search
    expected_pages: int  # pages total_count promises (at most max_pages), at least 1
    failure: str | None = None  # the answer cannot be paged (NO_TOTAL)
    promised_empty: bool = False

    @property
    def below_total(self) -> int:
        """Items total_count promised that the API never delivered (0 when max_pages cut it)."""
        if self.end in (None, "max_pages") or self.state.total is None:
            return 0
        return max(0, self.state.total - self.state.items)


def page_size_of(data: dict[str, Any], asked: int) -> int:
    """The page size the API paged by: its `page_size` when it reports a smaller one."""
    said = data.get("page_size")
    if type(said) is int and 1 <= said < asked:
        return said
    return asked


def unusable_search(data: dict[str, Any], page: int, asked_page_size: int) -> str | None:
    """Why a successful search answer must not be kept for a re-run (None: it may): it cannot be
    paged, or it is an empty page total_count says should hold items."""
    step = paginate(ChainState(image="", img="", q={}, page=page), data, asked_page_size, False)
    return step.failure or (EMPTY_PROMISED if step.promised_empty else None)


def empty_page_message(page: int, total: int, asks: int, items: int) -> str:
    """The failure record's reason for a page that stayed empty while total_count promised more."""
    times = "once" if asks == 1 else f"{asks} times"
    earlier = "page 1" if page == 2 else f"pages 1-{page - 1}"
    kept = f"; {items} items kept from {earlier}" if page > 1 else ""
    return f"empty page: page {page} came back empty {times} while total_count says {total}{kept}"


def end_of_search(
    page: int,
    last: int,
    max_pages: int,
    items: int,
    new: int,
    size: int,
    has_next_page: Any,
    stop_on_short_page: bool,
) -> str | None:
    """Why the search of an image ends after this page (the summary's `ended`, stats
    tmapi/images_below_total/<why>), or None to ask for the next."""
    if not items:
        return "empty_page"
    if not new:
        return "no_new_items"  # every item of the page was seen before (a repeating backend)
    if page >= last:
        return "last_page"  # the page total_count puts last
    if max_pages and page >= max_pages:
        return "max_pages"
    if has_next_page is False:
        return "has_next_page_false"
    if stop_on_short_page and items < size:
        return "short_page"  # TMAPI_STOP_ON_SHORT_PAGE: fewer items than the page size
    return None


def paginate(state: ChainState, data: dict[str, Any], asked_page_size: int, stop_on_short_page: bool) -> Step:
    """Read one successful search answer (`data` of the envelope) for `state`'s page."""
    total, items = data.get("total_count"), data.get("items")
    if total == 0 and items is None:  # "nothing found" written as null
        items = []
    if type(total) is not int or total < 0 or not isinstance(items, list):
        return Step([], 0, 0, state, None, None, 0, failure=NO_TOTAL)
    size = page_size_of(data, asked_page_size)
    seen = set(state.seen)
    new: list[tuple[int, dict[str, Any]]] = []
    not_objects = dups = 0
    for rank, raw in enumerate(items, (state.page - 1) * size + 1):
        if not isinstance(raw, dict):
            not_objects += 1
            continue
        key = raw.get("item_id")
        # Only a real integer id is remembered: `true` or `1.0` would pass for item 1.
        if type(key) is int:
            if key in seen:
                dups += 1
                continue
            seen.add(key)
        new.append((rank, raw))
    last = contract.last_page(total, size)
    after = replace(
        state,
        seen=list(seen),
        total=total if state.total is None else state.total,
        items=state.items + len(new),
        dups=state.dups + dups,
        prev_short=len(items) < size,
        empty_asks=0,
    )
    # An empty page total_count says holds items, unless the page before ran short (an overstated total).
    promised_empty = not items and total > (state.page - 1) * size and (state.page == 1 or not state.prev_short)
    end = end_of_search(
        state.page, last, state.max_pages, len(items), len(new), size, data.get("has_next_page"), stop_on_short_page
    )
    following = replace(after, page=state.page + 1) if end is None else None
    expected = max(min(last, state.max_pages or last), 1)
    return Step(new, not_objects, dups, after, following, end, expected, promised_empty=promised_empty)
