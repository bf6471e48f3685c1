"""The same image URL in four spellings (host and scheme case, `:443`, a `#fragment`) is
one image: searched and paid for once, its records once. Path and query stay as given."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SANDBOX_TOKEN
from tests.crawl_helpers import crawl
from tmapi_spiders.sandbox import SandboxThread

IMAGE = "https://cbu01.alicdn.com/img/Spelled.jpg?total=45"  # 45 items: 3 pages of 20
SPELLINGS = [
    IMAGE,
    "HTTPS://CBU01.AliCDN.com/img/Spelled.jpg?total=45",
    "https://cbu01.alicdn.com:443/img/Spelled.jpg?total=45",
    "https://Cbu01.alicdn.com/img/Spelled.jpg?total=45#zoom",
]
OTHER = "https://cbu01.alicdn.com/img/spelled.jpg?total=25"  # the path in another case: another image


def test_four_spellings_of_one_image_are_one_search(tmp_path: Path, sandbox: SandboxThread) -> None:
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("\n".join([*SPELLINGS, OTHER]) + "\n")
    result = crawl(tmp_path, sandbox.base_url, {"urls_file": str(seeds)}, token=SANDBOX_TOKEN)
    assert result.returncode == 0, result.stderr[-2000:]
    calls = sandbox.calls()
    assert len(calls) == 3 + 2  # the pages of two images, nothing more
    assert result.stats["tmapi/paid_calls"] == 5
    queried = sorted({p["query_image_url"] for p in result.products})
    assert queried == sorted([IMAGE, OTHER])  # what was searched: the canonical spelling
    assert len(result.products) == 45 + 25 and result.failures == []
