"""SeedWriter spells each seed of a list exactly as seed_json + seed_fingerprint did: a job
seeded by an older version keeps its keys, and a seed pushed again is known again."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import assume, given
from hypothesis import strategies as st

from tests.seeds import seed_fingerprint, seed_json
from tmapi_spiders.api import contract
from tmapi_spiders.api.identity import image_key
from tmapi_spiders.crawl.seed_reading import parse_lines
from tmapi_spiders.crawl.seeds import Seed, check_image_url
from tmapi_spiders.distributed.seed_writer import SeedWriter
from tmapi_spiders.spreadsheets.sheets import parse_sheet

queries = st.builds(
    contract.SearchQuery,
    language=st.sampled_from(contract.LANGUAGES),
    sort=st.sampled_from(contract.SORTS),
    page_size=st.integers(1, contract.PAGE_SIZE_MAX),
    filters=st.dictionaries(st.sampled_from(contract.FILTERS), st.booleans()),
)
# Lines as catalogues hold them, odd ones included: what the readers make of them is the seed.
lines = st.one_of(
    st.from_regex(
        r"(?i)https?://[a-z0-9.-]{1,20}\.(com|cn)(:443|:80|:8080)?/[A-Za-z0-9/._%?=&#-]{0,40}", fullmatch=True
    ),
    st.text(min_size=1, max_size=40).map(lambda t: "https://shop.example.com/" + t),
)
cells = st.one_of(st.none(), st.integers(-(10**30), 10**30), st.floats(allow_nan=False), st.text(max_size=20))


def slow(seed: Seed, query: contract.SearchQuery, max_pages: int) -> tuple[str, str]:
    data = seed_json(seed.url, query, max_pages, seed)
    return seed_fingerprint(data), json.dumps(data, ensure_ascii=False, sort_keys=True)


@given(st.lists(lines, max_size=8), queries, st.integers(0, 50))
def test_a_text_list_is_written_as_seed_json_wrote_it(urls: list[str], query: contract.SearchQuery, pages: int) -> None:
    write = SeedWriter(query, pages)
    for entry in parse_lines(url.encode("utf-8", "surrogatepass") for url in urls):
        if isinstance(entry, Seed):
            assert write(entry) == slow(entry, query, pages)


@given(lines, st.dictionaries(st.text(min_size=1, max_size=8), cells, max_size=4), st.integers(2, 10**6), queries)
def test_a_spreadsheet_row_is_written_as_seed_json_wrote_it(
    url: str, given_input: dict[str, object], row: int, query: contract.SearchQuery
) -> None:
    assume(check_image_url(url) is None)  # a line the readers refuse is no seed
    seed = Seed(image_key(url), row, given_input)  # readers yield image keys
    fingerprint, data = SeedWriter(query, 3)(seed)
    assert (fingerprint, data) == slow(seed, query, 3)
    # the row's fields are data, never part of the seed's key
    assert fingerprint == SeedWriter(query, 3)(Seed(seed.url, 1))[0]


def test_csv_rows_are_written_as_seed_json_wrote_them(tmp_path: Path) -> None:
    sheet = tmp_path / "list.csv"
    sheet.write_text(
        'sku,image,title,price\nA-1,HTTPS://IMG.Example.com:443/a.jpg#x,"Größe ""L""",12.50\n'
        "B-2,https://cbu01.alicdn.com/img/b.jpg?x=1,雨伞,7\n",
        encoding="utf-8",
    )
    query = contract.SearchQuery(language="en", filters={"is_factory": True})
    seeds = [e for e in parse_sheet(sheet, "urls_file") if isinstance(e, Seed)]
    assert [SeedWriter(query, 0)(seed) for seed in seeds] == [slow(seed, query, 0) for seed in seeds]
    assert json.loads(SeedWriter(query, 0)(seeds[0])[1])["url"] == "https://img.example.com/a.jpg"
