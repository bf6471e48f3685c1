"""The per-page hot path (docs/performance.md): the faster ways give the same answers."""

from __future__ import annotations

from pathlib import Path

from tests.crawl_helpers import crawl
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread


def test_a_long_image_url_is_searched_not_dropped(tmp_path: Path) -> None:
    """A 4,000-character image URL makes a search URL far beyond Scrapy's 2,083 (UrlLengthMiddleware is off)."""
    long_url = f"https://cbu01.alicdn.com/img/ibank/{'a' * 3900}/total-25.jpg"
    short_url = "https://cbu01.alicdn.com/img/ibank/short/total-3.jpg"
    seeds = tmp_path / "images.txt"
    seeds.write_text(f"{long_url}\n{short_url}\n", encoding="utf-8")
    with SandboxThread(SandboxConfig()) as sb:
        result = crawl(tmp_path, sb.base_url, {"urls_file": str(seeds)})
        calls = sb.calls()
    assert result.returncode == 0, result.stderr[-2000:]
    by_image: dict[str, int] = {}
    for product in result.products:
        by_image[product["query_image_url"]] = by_image.get(product["query_image_url"], 0) + 1
    assert by_image == {long_url: 25, short_url: 3}
    assert not result.failures
    assert len(calls) == 3  # two pages of the long one, one of the short one
