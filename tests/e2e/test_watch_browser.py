"""The changes page (`scrapy diff -o changes.html`) in a real headless Chromium: the rows
its script draws, sorting by a column, filtering by kind and text, hostile titles kept as
text; no console error, exception or dialog (tests/browser.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import Browser, find_chromium, open_report
from tmapi_spiders.watch import diff as d
from tmapi_spiders.watch import feed, output

pytestmark = pytest.mark.e2e
Q = "https://cbu01.alicdn.com/img/ibank/q.jpg"


def rec(item_id: int, price: str, title: str = "") -> dict[str, Any]:
    return {"query_image_url": Q, "item_id": item_id, "price": price, "title": title or f"offer {item_id}", "rank": 1}


@pytest.fixture(scope="module")
def page_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    old = [rec(1, "10.00"), rec(2, "10.00"), rec(3, "10.00"), rec(4, "10.00", "<img src=x onerror=alert(1)>")]
    new = [rec(1, "9.00"), rec(2, "7.00"), rec(3, "11.00"), rec(5, "3.00", "</script><script>alert(2)</script>")]
    lines = lambda records: (json.dumps(r).encode() for r in records)  # noqa: E731
    summary, records = d.diff(feed.read_lines(lines(old)), feed.read_lines(lines(new)), d.parse_rules("gone"))
    path = tmp_path_factory.mktemp("watch") / "changes.html"
    output.write(path, {"old": "a", "new": "b", **summary}, records)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[tuple[asyncio.AbstractEventLoop, Browser]]:
    binary = find_chromium()
    if binary is None:
        pytest.skip("no chromium binary: install Debian's `chromium` package (.ci/run does, as root)")
    loop = asyncio.new_event_loop()
    b = Browser(binary, width=1280, height=900)
    loop.run_until_complete(b.__aenter__())
    yield loop, b
    loop.run_until_complete(b.__aexit__(None, None, None))
    loop.close()


def test_changes_page_draws_sorts_and_filters(
    browser: tuple[asyncio.AbstractEventLoop, Browser], page_path: Path
) -> None:
    loop, b = browser

    async def steps() -> None:
        page = await open_report(b, page_path)
        ids = "Array.from(document.querySelectorAll('#rows tr')).map(r => r.dataset.item)"
        assert await page.js(ids) == ["2", "1", "3", "5", "4"]  # biggest drop first, then rises, new, gone
        await page.js("document.querySelector('th[data-key=pct] button').click()")
        assert (await page.js(ids))[:3] == ["2", "1", "3"]
        await page.js("document.querySelector('th[data-key=pct] button').click()")
        assert (await page.js(ids))[:3] == ["3", "1", "2"]
        await page.js("var k = document.getElementById('kind'); k.value = 'gone'; k.dispatchEvent(new Event('change'))")
        assert await page.js(ids) == ["4"]
        assert await page.js("document.querySelector('#rows td:nth-child(4)').textContent") == (
            "<img src=x onerror=alert(1)>"
        )
        await page.js("var k = document.getElementById('kind'); k.value = ''; k.dispatchEvent(new Event('change'))")
        await page.js("var q = document.getElementById('q'); q.value = 'alert(2)'; q.dispatchEvent(new Event('input'))")
        assert await page.js(ids) == ["5"]
        assert await page.js("document.getElementById('shown').textContent") == "1 of 5"
        await page.js("document.getElementById('alerts-only').click(); document.getElementById('q').value = '';"
                      "document.getElementById('q').dispatchEvent(new Event('input'))")  # fmt: skip
        assert await page.js(ids) == ["4"]
        assert page.errors == []
        await page.close()

    loop.run_until_complete(steps())
