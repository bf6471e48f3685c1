"""The HTML report in a real headless Chromium: what the page shows after its script ran, and
what sorting, filtering, collapsing and "show more" change, read from the live DOM over the
DevTools protocol (tests/browser.py). Every test also asserts that the page logged no error,
threw nothing and opened no dialog. Host names resolve to nothing, as offline.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import Browser, Page, find_chromium, open_report
from tests.crawl_helpers import read_jsonl, run_scrapy
from tests.report_data import failure, record
from tmapi_spiders.crawl.outputs import write_whole
from tmapi_spiders.report import model
from tmapi_spiders.report import page as report_page

pytestmark = pytest.mark.e2e

HOSTILE_TITLE = "<script>alert(1)</script>"
HOSTILE_IMG_TITLE = '<img src=x onerror="alert(2)">'
TOKEN = "tok-77c1e0d9a5b34f21"
Q1 = "https://cbu01.alicdn.com/img/ibank/lamp.jpg"
Q2 = "https://cbu01.alicdn.com/img/ibank/hostile.jpg"
DENIED = "https://denied.example.net/photo.jpg"
JS_QUERY = "javascript:alert(5)"


def lamp(rank: int) -> dict[str, Any]:
    """Image 1's offers: prices, sales and badges that differ by rank in known ways."""
    return record(
        Q1,
        rank=rank,
        price=f"{(rank * 7) % 30 + 1}.50",
        sold=(rank * 37) % 101,
        title=("Brass Lamp" if rank <= 5 else "Phone Case") + f" {rank}",
        factory=rank % 3 == 0,
        verified=rank % 2 == 0,
        free_shipping=rank % 5 == 0,
        dropship=rank % 4 == 0,
        new=rank == 7,
    )


LAMPS = [lamp(rank) for rank in range(1, 31)]


def price_of(r: dict[str, Any]) -> float:
    return float(r["price"])


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = find_chromium()
    if binary is None:
        pytest.skip("no chromium binary: install Debian's `chromium` package (.ci/run does, as root)")
    return binary


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[tuple[asyncio.AbstractEventLoop, Browser]]:
    """One browser for the module, on one event loop the tests run their steps in."""
    loop = asyncio.new_event_loop()
    b = Browser(chromium, width=1280, height=900)
    loop.run_until_complete(b.__aenter__())
    yield loop, b
    loop.run_until_complete(b.__aexit__(None, None, None))
    loop.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report of 4 images: 30 varied offers; hostile titles and URLs (and the token); a
    `javascript:` query URL; a failed image without offers (known from the failures feed only)."""
    hostile = [
        record(Q2, rank=1, title=HOSTILE_TITLE, product_url="javascript:alert(3)", img="javascript:alert(4)"),
        record(Q2, rank=2, title=HOSTILE_IMG_TITLE),
        record(Q2, rank=3, title=f"Token {TOKEN} in a title"),
    ]
    records = [*LAMPS, *hostile, record(JS_QUERY, rank=1, title="Offer of a strange query")]
    data = model.report_data(records, [failure(DENIED)], None, secrets=[TOKEN])
    path = tmp_path_factory.mktemp("report") / "demo.report.html"
    write_whole(path, (report_page.render(data),))
    return path


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 images of 3 offers: more than one screenful of sections."""
    records = [record(f"https://cbu01.alicdn.com/img/ibank/q{i}.jpg", rank=r) for i in range(60) for r in (1, 2, 3)]
    path = tmp_path_factory.mktemp("report") / "many.report.html"
    write_whole(path, (report_page.render(model.report_data(records)),))
    return path


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's demo, end to end: the sandbox crawled for examples/images.txt, then `scrapy report`."""
    out = tmp_path_factory.mktemp("crawled")
    products = out / "products.jsonl"
    crawl = ["crawl", "image_search", "-a", "urls_file=examples/images.txt"]
    crawl += ["-s", "TMAPI_SANDBOX=true", "-O", str(products)]
    for args in (crawl, ["report", str(products)]):
        done = run_scrapy(args, dict(os.environ))
        assert done.returncode == 0, done.stderr[-3000:]
    return products


def run(
    browser: tuple[asyncio.AbstractEventLoop, Browser],
    path: Path,
    steps: Callable[[Page], Awaitable[None]],
    fragment: str = "",
) -> None:
    """Open the report in a new tab, run the steps, and check the page stayed error-free."""
    loop, b = browser

    async def go() -> None:
        page = await open_report(b, path, fragment)
        try:
            await steps(page)
            await asyncio.sleep(0.1)  # late console messages
            assert page.errors == []
        finally:
            await page.close()

    loop.run_until_complete(go())


async def ranks(page: Page, image: int) -> list[int]:
    """The ranks of image N's cards, in the order shown."""
    return await page.js(
        f"Array.from(document.querySelectorAll('#cards-{image - 1} .card')).map(c => Number(c.dataset.rank))"
    )


async def card_counts(page: Page) -> dict[str, int]:
    """Cards shown per image section, by the image's number."""
    return await page.js(
        "Object.fromEntries(Array.from(document.querySelectorAll('section.image'))"
        ".map(s => [s.dataset.image, s.querySelectorAll('.card').length]))"
    )


async def set_control(page: Page, selector: str, value: str, event: str = "change") -> None:
    """Change a control the way a user does: its value, then the event the page listens to."""
    await page.js(
        f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.value = {json.dumps(value)};"
        f" e.dispatchEvent(new Event({json.dumps(event)}, {{bubbles: true}})); }})()"
    )


async def click(page: Page, selector: str) -> None:
    await page.js(f"document.querySelector({json.dumps(selector)}).click()")


def test_each_image_has_its_cards_a_page_at_a_time(browser: Any, demo: Path) -> None:
    async def steps(page: Page) -> None:
        assert await card_counts(page) == {"1": 12, "2": 3, "3": 1, "4": 0}
        assert await ranks(page, 1) == list(range(1, 13))
        counts = await page.js("document.querySelector('#image-1 .counts').textContent")
        assert "Offers30" in counts and "Pages2" in counts and "Paid calls2" in counts
        failed = await page.js("document.querySelector('#image-4').textContent")
        assert "failed" in failed and "convert 403: Access denied" in failed and "No offers." in failed
        await click(page, "#image-1 button.more")
        assert await ranks(page, 1) == list(range(1, 31))
        assert await page.js("document.querySelector('#image-1 button.more').hidden") is True
        status = await page.js("document.getElementById('status').textContent")
        assert status == "34 offers for 4 images."
        card = await page.js("document.querySelector('#cards-0 .card').innerText")
        for text in (
            "Brass Lamp 1",
            "¥8.50",
            "MOQ 2",
            "37 sold",
            "4,028 orders",
            "30% repurchase",
            "晋江鑫源贸易有限公司",
        ):
            assert text in card
        assert "6 years · Fujian, Jinjiang, Quanzhou" in card
        link = await page.js("document.querySelector('#cards-0 .card h3 a').href")
        assert link == LAMPS[0]["product_url"]
        assert await page.js("document.querySelector('#cards-0 .card h3 a').title") == LAMPS[0]["title_origin"]

    run(browser, demo, steps)


def test_sorting_from_the_fragment_and_the_control(browser: Any, demo: Path) -> None:
    by_price = [r["rank"] for r in sorted(LAMPS, key=lambda r: (price_of(r), r["rank"]))]
    by_price_down = [r["rank"] for r in sorted(LAMPS, key=lambda r: (-price_of(r), r["rank"]))]
    by_sales = [r["rank"] for r in sorted(LAMPS, key=lambda r: (-r["sale_info"]["sale_quantity"], r["rank"]))]

    async def steps(page: Page) -> None:
        assert await ranks(page, 1) == by_price[:12]
        assert await page.js("document.getElementById('sort').value") == "price_up"
        await set_control(page, "#sort", "sales")
        await page.wait_for("location.hash === '#sort=sales'")
        assert await ranks(page, 1) == by_sales[:12]
        await set_control(page, "#sort", "price_down")
        await page.wait_for("location.hash === '#sort=price_down'")
        assert await ranks(page, 1) == by_price_down[:12]
        await set_control(page, "#sort", "rank")
        await page.wait_for("location.hash === ''")
        assert await ranks(page, 1) == list(range(1, 13))

    run(browser, demo, steps, "sort=price_up")


def test_filters_by_badge_price_and_text(browser: Any, demo: Path) -> None:
    factory = [r["rank"] for r in LAMPS if r["rank"] % 3 == 0]
    factory_verified = [r["rank"] for r in LAMPS if r["rank"] % 6 == 0]
    cheap = [r["rank"] for r in LAMPS if 5 <= price_of(r) <= 10]

    async def steps(page: Page) -> None:
        # From the fragment: only image 1 has factory offers, so only it is listed.
        assert await card_counts(page) == {"1": len(factory)}
        assert await ranks(page, 1) == factory
        assert await page.js("document.querySelectorAll('#cards-0 .card:not(:has(.tag-factory))').length") == 0
        assert await page.js("document.getElementById('badge-factory').checked") is True
        status = await page.js("document.getElementById('status').textContent")
        assert status == f"{len(factory)} of 34 offers match, for 1 of 4 images."
        await page.js("document.getElementById('badge-verified').click()")
        await page.wait_for("location.hash === '#badge=factory,verified'")
        assert await ranks(page, 1) == factory_verified
        await click(page, "#reset")
        await page.wait_for("location.hash === ''")
        assert await card_counts(page) == {"1": 12, "2": 3, "3": 1, "4": 0}
        await set_control(page, "#min", "5", "input")
        await set_control(page, "#max", "10", "input")
        await page.wait_for("location.hash === '#min=5&max=10'")
        await click(page, "#image-1 button.more")
        assert await ranks(page, 1) == cheap
        await click(page, "#reset")
        await set_control(page, "#q", "brass lamp", "input")
        await page.wait_for("location.hash === '#q=brass%20lamp'")
        assert await card_counts(page) == {"1": 5}
        await set_control(page, "#q", "晋江鑫源 case 30", "input")  # supplier and title words, all must match
        await page.wait_for("location.hash.startsWith('#q=')  && document.querySelectorAll('.card').length === 1")
        assert await ranks(page, 1) == [30]

    run(browser, demo, steps, "badge=factory")


def test_hostile_data_is_shown_as_text_and_never_run_or_linked(browser: Any, demo: Path) -> None:
    async def steps(page: Page) -> None:
        titles = await page.js("Array.from(document.querySelectorAll('#cards-1 h3')).map(h => h.textContent)")
        assert titles[:2] == [HOSTILE_TITLE, HOSTILE_IMG_TITLE]
        assert await page.js("document.scripts.length") == 4  # the two data blocks and the page's two
        assert (
            await page.js("document.querySelectorAll('main script, main [onerror], .card img[src=\"x\"]').length") == 0
        )
        assert await page.js("document.querySelector('#cards-1 h3').firstElementChild.tagName") == "SPAN"
        js_links = "Array.from(document.querySelectorAll('[href],[src]')).filter(e => /^\\s*javascript:/i.test("
        js_links += "e.getAttribute('href') || e.getAttribute('src'))).length"
        assert await page.js(js_links) == 0
        assert await page.js("document.querySelectorAll('#image-3 .photo img').length") == 0
        assert await page.js("document.querySelector('#image-3 figcaption').textContent") == JS_QUERY
        page_text = await page.js("document.documentElement.outerHTML")
        assert TOKEN not in page_text and "Token [redacted] in a title" in page_text

    run(browser, demo, steps)


def test_collapse_expand_labels_and_alt_text(browser: Any, demo: Path) -> None:
    async def steps(page: Page) -> None:
        toggle = "#image-1 button.toggle"
        assert await page.js(f"document.querySelector('{toggle}').getAttribute('aria-expanded')") == "true"
        await click(page, toggle)
        assert await page.js("document.getElementById('cards-0').hidden") is True
        assert await page.js(f"document.querySelector('{toggle}').getAttribute('aria-expanded')") == "false"
        await click(page, toggle)
        assert await page.js("document.getElementById('cards-0').children.length") == 12
        await click(page, "#collapse-all")
        assert await page.js("Array.from(document.querySelectorAll('.cards')).every(l => l.hidden)") is True
        await click(page, "#expand-all")
        assert await page.js("Array.from(document.querySelectorAll('.cards')).some(l => l.hidden)") is False
        unlabelled = "Array.from(document.querySelectorAll('input, select')).filter(e => !e.labels.length).length"
        assert await page.js(unlabelled) == 0
        assert await page.js("Array.from(document.images).filter(i => !i.getAttribute('alt')).length") == 0
        assert await page.js("document.querySelector('#cards-0 img').alt") == "Photo of Brass Lamp 1"

    run(browser, demo, steps)


def test_offline_thumbnails_fall_back_to_placeholders(browser: Any, demo: Path) -> None:
    async def steps(page: Page) -> None:
        # Hosts resolve to nothing: each visible image fails and leaves its placeholder.
        shown = "#image-1 .photo img:not([hidden]), #cards-0 .card:first-child img:not([hidden])"
        await page.wait_for(f"document.querySelectorAll({json.dumps(shown)}).length === 0")
        before = await page.js("getComputedStyle(document.querySelector('#cards-0 .thumb'), '::before').content")
        assert before == '"no image"'

    run(browser, demo, steps)


def test_readable_on_a_phone(browser: Any, demo: Path) -> None:
    async def steps(page: Page) -> None:
        await page.viewport(390, 844, mobile=True)
        await page.js("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        assert await page.js("document.documentElement.scrollWidth") <= 390
        columns = await page.js("getComputedStyle(document.getElementById('cards-0')).gridTemplateColumns.split(' ')")
        assert len(columns) == 2

    run(browser, demo, steps)


def test_many_images_are_rendered_as_they_are_reached(browser: Any, many: Path) -> None:
    sections = "document.querySelectorAll('section.image').length"

    async def steps(page: Page) -> None:
        first = await page.js(sections)
        assert 4 <= first < 60
        await page.js("window.scrollTo(0, document.body.scrollHeight)")
        await page.wait_for(f"{sections} > {first}")
        await page.js("document.querySelector('.more-images-button').focus()")
        while await page.js(sections) < 60:
            await click(page, ".more-images-button")
        assert await page.js("document.querySelector('.more-images-button').hidden") is True

    run(browser, many, steps)


def test_the_demo_crawl_as_a_report(browser: Any, crawled: Path) -> None:
    offers: dict[str, int] = {}
    for r in read_jsonl(crawled):
        offers[r["query_image_url"]] = offers.get(r["query_image_url"], 0) + 1
    summary = json.loads(crawled.with_name("products.summary.json").read_text())

    async def steps(page: Page) -> None:
        await page.js("document.getElementById('expand-all').click()")
        while not await page.js("document.querySelector('.more-images-button').hidden"):
            await click(page, ".more-images-button")
        shown = await page.js(
            "Array.from(document.querySelectorAll('section.image')).map(s => ["
            "s.querySelector('figcaption').textContent, s.querySelectorAll('.card').length])"
        )
        assert len(shown) == len(summary["images"]) == 7
        assert {url: cards for url, cards in shown if cards} == {u: min(n, 12) for u, n in offers.items()}
        header = await page.js("document.getElementById('run').textContent")
        totals = summary["totals"]
        assert f"Offers{totals['items_written']:,}" in header and f"Paid calls{totals['paid_calls']}" in header
        assert "Finish reasonfinished" in header

    run(browser, crawled.with_name("products.report.html"), steps)


@pytest.fixture(scope="module")
def sourcing_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three products from a seed spreadsheet (tests/unit/test_sourcing.py's small case), built
    with a choice: best by price, at most 20 CNY."""
    from tests.unit.test_sourcing import small_case, with_input
    from tmapi_spiders.spreadsheets import sourcing

    rows = {"https://img.example/a.jpg": 2, "https://img.example/b.jpg": 3, "https://img.example/c.jpg": 4}
    records = [with_input(r, rows[r["query_image_url"]], r["query_image_url"][-5]) for r in small_case()]
    choice = sourcing.choice_from({"best_by": "price", "max_price": "20"})
    path = tmp_path_factory.mktemp("report") / "sourcing.report.html"
    write_whole(path, (report_page.render(model.report_data(records, choice=choice)),))
    return path


def test_suppliers_view_and_the_sheets_columns(browser: Any, sourcing_report: Path) -> None:
    async def steps(page: Page) -> None:
        cols = await page.js("document.querySelector('#image-1 .input-cols').innerText")
        assert cols.split() == ["Row", "2", "sku", "a", "qty", "10", "note"]
        # The choice is the page's default view: by price, at most 20 CNY.
        assert await page.js("document.getElementById('sort').value") == "price_up"
        assert await page.js("document.getElementById('max').value") == "20"
        status = await page.js("document.getElementById('status').textContent")
        assert status == "5 of 8 offers match, for 3 of 3 images."
        summary = await page.js("document.getElementById('suppliers-summary').textContent")
        assert summary == "Suppliers: who could supply most of the list (3 suppliers, 3 products)"
        await click(page, "#suppliers-summary")
        assert await page.js("document.getElementById('suppliers').open") is True
        order = await page.js(
            "Array.from(document.querySelectorAll('#suppliers tbody tr')).map(r => r.dataset.supplier)"
        )
        # Within 20 CNY, by hand: S1 has a (10.00) and b (5.00); S4 (8.00) and S3 (9.00) have c.
        assert order == ["S1", "S4", "S3"]
        first = await page.js("document.querySelector('#suppliers tbody tr .products').innerText")
        assert first == "Image 1 ¥10.00, Image 2 ¥5.00"
        assert await page.js("document.querySelector('#suppliers tbody tr .matched').innerText") == "2 of 3"
        await click(page, "#suppliers tbody tr .products a[href='#image-2']")
        assert await page.js("document.getElementById('image-2') !== null") is True

    run(browser, sourcing_report, steps)


def test_prices_show_the_currency_and_rate_the_run_was_given(browser: Any, tmp_path: Path) -> None:
    """`-a currency=USD -a rate=...`: the header says which rate, every price shows both."""
    from tests.unit.test_sourcing import small_case

    summary = {"finish_reason": "finished", "currency": {"currency": "USD", "rate": 0.5}, "totals": {"images": 3}}
    path = tmp_path / "currency.report.html"
    write_whole(path, (report_page.render(model.report_data(small_case(), summary=summary)),))

    async def steps(page: Page) -> None:
        header = await page.js("document.getElementById('run').innerText")
        assert "USD at 0.5 per CNY (the rate given)" in header
        prices = await page.js("Array.from(document.querySelectorAll('#image-1 .price')).map(p => p.textContent)")
        assert prices and all("(USD " in p for p in prices), prices
        assert "¥10.00 (USD 5.00)" in prices, prices  # 10 CNY at 0.5

    run(browser, path, steps)
