"""What identifies one image search, and the keys built from it.

The first tests pin fingerprints computed by the code as it was before identity.py
existed: seed fingerprints and the duplicate filter's keys are stored in Redis by running
jobs, so a worker of a new version must compute the very same bytes for the same search
(else a re-seeded image is pushed twice, or a page is paid twice)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.seeds import seed_fingerprint, seed_json
from tmapi_spiders.api import contract, requests
from tmapi_spiders.api.identity import ImageSearch, image_key, record_results
from tmapi_spiders.api.paging import ChainState
from tmapi_spiders.distributed.dupefilter import ImageDupeFilter
from tmapi_spiders.distributed.merge import record_key
from tmapi_spiders.distributed.start import read_seed

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
    base_url, dupefilter = "http://api.example", ImageDupeFilter(None, "unused")
    state = ChainState(image=image, img=image, q=query.to_dict(), max_pages=max_pages)
    converted = ChainState(image=image, img="/search/abc.jpg", q=query.to_dict(), max_pages=max_pages, converted=True)
    page3 = ChainState(**{**converted.to_meta(), "page": 3, "seen": [1, 2]})
    got = (
        seed_fingerprint(seed_json(image, query, max_pages)),
        dupefilter.request_fingerprint(requests.search(base_url, state, noop, noop)),
        dupefilter.request_fingerprint(requests.convert(base_url, state, noop, noop)),
        dupefilter.request_fingerprint(requests.search(base_url, converted, noop, noop)),
        dupefilter.request_fingerprint(requests.search(base_url, page3, noop, noop)),
    )
    assert got == PINNED[(query_name, image)]


def test_merge_keys_are_unchanged() -> None:
    record = {"query_image_url": "u", "language": "en", "sort": "default", "filters": {"b": True, "a": False}}
    assert record_key({**record, "item_id": 5}) == '["u", "en", "default", {"a": false, "b": true}, 5]'
    failure = {**record, "filters": None, "stage": "search", "message": "m"}
    assert record_key(failure) == '["u", "en", "default", null, "search"]'
    assert record_key({"query_image_url": "u"}) == '["u", null, null, null, null]'


# -- one definition: the seed, the chain state, the filter and the record agree on what a search is

images = st.from_regex(r"https://[a-z]{1,12}\.(com|cn)/[A-Za-z0-9/._%-]{0,40}", fullmatch=True)
queries = st.builds(
    contract.SearchQuery,
    language=st.sampled_from(contract.LANGUAGES),
    sort=st.sampled_from(contract.SORTS),
    page_size=st.integers(1, contract.PAGE_SIZE_MAX),
    filters=st.dictionaries(st.sampled_from(contract.FILTERS), st.booleans()),
)
searches = st.tuples(images, queries, st.integers(0, 50))


def record_of(s: ImageSearch, item_id: int = 1) -> dict[str, object]:
    """A record as the spider writes one found by `s`: the image, the query but its paging, the page."""
    found_by = {"query_image_url": s.image, "language": s.language, "sort": s.sort, "filters": dict(s.filters)}
    return {**found_by, "page": 2, "item_id": item_id}


@given(searches)
def test_a_seed_read_back_from_redis_is_the_search_seeded(search: tuple[str, contract.SearchQuery, int]) -> None:
    image, query, max_pages = search
    seed = seed_json(image, query, max_pages)
    read, read_query, read_max = read_seed(json.dumps(seed, ensure_ascii=False, sort_keys=True))
    assert ImageSearch.of(read.url, read_query, read_max) == ImageSearch.of(image, query, max_pages)
    # however the JSON was spelled, one seed
    assert seed_fingerprint(json.loads(json.dumps(dict(reversed(seed.items()))))) == seed_fingerprint(seed)


@given(searches)
def test_the_chain_state_of_a_seed_is_the_same_search(search: tuple[str, contract.SearchQuery, int]) -> None:
    image, query, max_pages = search
    state = ChainState(image=image, img=image, q=query.to_dict(), max_pages=max_pages)
    assert ImageSearch.from_state(state.to_meta()) == ImageSearch.of(image, query, max_pages)
    assert ImageSearch.of(image, query, max_pages).query_dict() == query.to_dict()


@given(searches, searches)
def test_two_searches_share_keys_only_when_they_are_the_same_search(
    one: tuple[str, contract.SearchQuery, int], other: tuple[str, contract.SearchQuery, int]
) -> None:
    a, b = ImageSearch.of(*one), ImageSearch.of(*other)
    same = a == b
    assert (seed_fingerprint(a.seed_fields()) == seed_fingerprint(b.seed_fields())) is same
    assert (a.dupefilter_key("search", False) == b.dupefilter_key("search", False)) is same
    # a record does not depend on the paging parameters: only image, language, sort and filters
    same_results = record_results(record_of(a)) == record_results(record_of(b))
    assert same_results is (a.image == b.image and (a.language, a.sort, a.filters) == (b.language, b.sort, b.filters))


@given(searches, st.integers(2, 100))
def test_calls_of_one_search_have_keys_of_their_own(search: tuple[str, contract.SearchQuery, int], page: int) -> None:
    s = ImageSearch.of(*search)
    keys = {
        s.dupefilter_key("convert", False),
        s.dupefilter_key("search", False),
        s.dupefilter_key("search", True),
        s.dupefilter_key("search", True, page),
        s.dupefilter_key("search", True, page + 1),
    }
    assert len(keys) == 5


@given(searches, st.integers(1, 10**6))
def test_a_record_says_which_search_found_it(search: tuple[str, contract.SearchQuery, int], item_id: int) -> None:
    image, query, max_pages = search
    record = {"query_image_url": image, "language": query.language, "sort": query.sort, "filters": query.filters}
    found_by = record_results(record_of(ImageSearch.of(image, query, max_pages), item_id))
    assert record_results({**record, "item_id": item_id}) == found_by


def test_the_image_is_stripped_and_nothing_more() -> None:
    # TMAPI fetches the URL as written: case, query order and escapes may name another picture.
    assert image_key("  https://a.com/X.jpg?b=1&a=2 \n") == "https://a.com/X.jpg?b=1&a=2"
    assert len({image_key(u) for u in ("https://a.com/x.jpg", "https://a.com/X.jpg", "https://a.com/x%2Ejpg")}) == 3


def test_image_key_makes_one_spelling_of_what_is_provably_the_same_image() -> None:
    from tmapi_spiders.api.identity import image_key

    same = [
        "https://cbu01.alicdn.com/img/A.jpg?X=1",
        "HTTPS://CBU01.AliCDN.com/img/A.jpg?X=1",
        "https://cbu01.alicdn.com:443/img/A.jpg?X=1",
        " https://cbu01.alicdn.com/img/A.jpg?X=1#top ",
    ]
    assert {image_key(u) for u in same} == {same[0]}
    # Path and query are case-sensitive on many servers: kept exactly, query order too.
    for other in ("https://cbu01.alicdn.com/img/a.jpg?X=1", "https://cbu01.alicdn.com/img/A.jpg?x=1"):
        assert image_key(other) == other
    assert image_key("https://a.com/x?b=2&a=1") == "https://a.com/x?b=2&a=1"
    assert image_key("HTTP://A.com:80/X") == "http://a.com/X"
    assert image_key("http://a.com:443/x") == "http://a.com:443/x"  # not http's default port
    assert image_key("https://a.com:8443/x") == "https://a.com:8443/x"
    assert image_key("https://[2001:DB8::1]:443/a") == "https://[2001:db8::1]/a"
    assert image_key("https://[2001:DB8::1]:8443/a") == "https://[2001:db8::1]:8443/a"
    assert image_key("https://Bücher.DE/A") == "https://bücher.de/A"
    assert image_key("https://User:PW@Host.com/A") == "https://User:PW@host.com/A"  # userinfo untouched
    assert image_key("/search/imgextra/X.jpg") == "/search/imgextra/X.jpg"
    assert image_key(image_key(same[1])) == image_key(same[1])
