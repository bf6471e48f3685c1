"""What identifies one image search, and the keys built from it.

The first tests pin fingerprints computed by the code as it was before identity.py
existed: seed fingerprints and the duplicate filter's keys are stored in Redis by running
jobs, so a worker of a new version must compute the very same bytes for the same search
(else a re-seeded image is pushed twice, or a page is paid twice)."""

from __future__ import annotations

import pytest

from tmapi_spiders import contract
from tmapi_spiders.api import ApiRequests
from tmapi_spiders.distributed.dupefilter import ImageDupeFilter
from tmapi_spiders.distributed.job import seed_fingerprint
from tmapi_spiders.distributed.merge import record_key
from tmapi_spiders.distributed.start import seed_json
from tmapi_spiders.paging import ChainState

ALIBABA = "https://cbu01.alicdn.com/img/ibank/a.jpg"
OTHER = "https://shop.example.com/É b.jpg?x=1"
QUERIES = {
    "default": (contract.SearchQuery(), 0),
    "filtered": (
        contract.SearchQuery(
            language="en", sort="sales", page_size=10, filters={"is_factory": True, "support_dropshipping": False}
        ),
        3,
    ),
}
# (query, image) -> seed, page-1 search, conversion, page-1 search after conversion, page 3 after conversion
PINNED = {
    ("default", ALIBABA): (
        "3c9e9bfc39c818b4258f0edaa3653ecd93ae69c5",
        "ec112f9c5617791ace8aeabf5cf501b24c3e3af2",
        "14a040169d1de00135385dffcd35b0d222a7d39b",
        "04e3eb534fead3036cb7877daf9153fe2e629460",
        "ec67c1f850ec2f0c14d195abdc2de4315b43ed82",
    ),
    ("default", OTHER): (
        "66fc6edbbfd12a32b821d9181aea00c35369ea06",
        "c891824e9de057b54b4c26d9cef05fc5be469b22",
        "85674436009b157cd19e455165bcff97c30bf200",
        "80d9846f30be1aded41643206b43535600a26d82",
        "1d09b5e025257567a22751d979d46868056b10db",
    ),
    ("filtered", ALIBABA): (
        "457fb622f744db62aec0220b80b00152f8a3fd4d",
        "914fa3232f580590eb5a250b0c84223b480cdc57",
        "0ff9570bde9d0feec58889e9ffc6f7d34b7abc2f",
        "e9cde08e19cb09cb2470fe96cecaba04102f22f6",
        "0dffcbe5bf6ba1230ba67d2e25977d359c6e8e15",
    ),
    ("filtered", OTHER): (
        "a7f1c7713287e42488ce495719ec742ece4c8dec",
        "87f46c37a448066fa5aa95e9808f999dc3cc0ec7",
        "ad4acf63821d94a64b810d042501c3983ef9f009",
        "dba110dd79d3f548492bf38b86df057b2ce59dfb",
        "7f67b143566f2afbdb35b851c3a203dddfffbcee",
    ),
}


def noop(*_: object) -> None:
    return None


@pytest.mark.parametrize(("query_name", "image"), sorted(PINNED))
def test_fingerprints_stored_by_running_jobs_are_unchanged(query_name: str, image: str) -> None:
    query, max_pages = QUERIES[query_name]
    api, dupefilter = ApiRequests("http://api.example"), ImageDupeFilter(None, "unused")
    state = ChainState(image=image, img=image, q=query.to_dict(), max_pages=max_pages)
    converted = ChainState(image=image, img="/search/abc.jpg", q=query.to_dict(), max_pages=max_pages, converted=True)
    page3 = ChainState(**{**converted.to_meta(), "page": 3, "seen": [1, 2]})
    got = (
        seed_fingerprint(seed_json(image, query, max_pages)),
        dupefilter.request_fingerprint(api.search(state, query, noop, noop)),
        dupefilter.request_fingerprint(api.convert(state, noop, noop)),
        dupefilter.request_fingerprint(api.search(converted, query, noop, noop)),
        dupefilter.request_fingerprint(api.search(page3, query, noop, noop)),
    )
    assert got == PINNED[(query_name, image)]


def test_merge_keys_are_unchanged() -> None:
    record = {"query_image_url": "u", "language": "en", "sort": "default", "filters": {"b": True, "a": False}}
    assert record_key({**record, "item_id": 5}) == '["u", "en", "default", {"a": false, "b": true}, 5]'
    failure = {**record, "filters": None, "stage": "search", "message": "m"}
    assert record_key(failure) == '["u", "en", "default", null, "search"]'
    assert record_key({"query_image_url": "u"}) == '["u", null, null, null, null]'
