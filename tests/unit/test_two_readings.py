"""Two readings of TMAPI's documents that must agree: the crawler's (contract.py) and
the sandbox's (sandbox/spec.py), written apart so the end-to-end tests prove more than
the crawler agreeing with itself. The sandbox imports nothing from the crawler."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.crawl_helpers import REPO
from tmapi_spiders.api import contract
from tmapi_spiders.sandbox import spec

SHARED = (
    "SEARCH_PATH",
    "CONVERT_PATH",
    "CONVERTED_PREFIX",
    "TOKEN_QUERY_PARAM",
    "TOKEN_HEADER",
    "PAGE_SIZE_DEFAULT",
    "PAGE_SIZE_MAX",
    "LANGUAGES",
    "LANGUAGE_DEFAULT",
    "SORTS",
    "SORT_DEFAULT",
    "FILTERS",
    "OK",
    "RETRY_LATER",
    "PARAM_ERROR",
    "NO_BALANCE",
    "UPSTREAM_TIMEOUT",
    "UNEXPECTED",
    "CONCURRENCY_LIMIT",
    "MSG_NO_KEY",
    "MSG_BAD_KEY",
    "MSG_NO_ROUTE",
    "MSG_IMAGE_TIMEOUT",
    "ALIBABA_HOSTS",
)


@pytest.mark.parametrize("name", SHARED)
def test_the_readings_agree(name: str) -> None:
    assert getattr(contract, name) == getattr(spec, name)


def test_status_meanings_agree_where_both_name_one() -> None:
    for status, meaning in spec.STATUS_MEANINGS.items():
        assert contract.STATUS_MEANINGS[status] == meaning


@pytest.mark.parametrize(
    "url",
    [
        "https://cbu01.alicdn.com/img/a.jpg",
        "https://img.alicdn.com./a.jpg",
        "https://detail.1688.com/a.jpg",
        "https://ALIBABA.com/a.jpg",
        "https://x.aliimg.com/a.jpg",
        "https://alicdn.com.evil.example/a.jpg",
        "https://notalicdn.com/a.jpg",
        "https://example.com/a.jpg",
        "/search/imgextra/1.jpg",
    ],
)
def test_hosts_searchable_without_conversion_agree(url: str) -> None:
    assert contract.is_alibaba_hosted(url) == spec.is_alibaba_hosted(url)


def test_what_the_crawler_sends_the_sandbox_reads_as_meant() -> None:
    query = contract.SearchQuery.from_args({"is_factory": "yes", "new_arrival": "0", "sort": "sales"})
    params = dict(contract.search_params(query.to_dict(), "https://cbu01.alicdn.com/a.jpg", 2))
    assert spec.parse_bool(params["is_factory"]) is True and spec.parse_bool(params["new_arrival"]) is False
    assert params["sort"] in spec.SORTS and params["language"] in spec.LANGUAGES
    assert 1 <= int(params["page_size"]) <= spec.PAGE_SIZE_MAX


def test_the_sandbox_imports_nothing_from_the_crawler() -> None:
    code = (
        "import sys, tmapi_spiders.sandbox, tmapi_spiders.sandbox.__main__;"
        "print(sorted(m for m in sys.modules if m.startswith('tmapi_spiders')"
        " and not m.startswith('tmapi_spiders.sandbox')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['tmapi_spiders']"
