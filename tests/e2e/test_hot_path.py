"""The per-page hot path (benchmarks/RESULTS.md): the faster ways give the same answers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests import strategies
from tests.crawl_helpers import crawl
from tmapi_spiders.api.envelope import parse_json, parse_json_carefully
from tmapi_spiders.api.schema import MAX_DEPTH, invalid_reason, too_deep
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

json_values = strategies.json_values(["\ud800", "\udfff", "19.00", "\x00", "\ufeff"], text_size=20, max_leaves=12)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """JSON as an API might send it: any value, NaN/Infinity, escaped or raw text, then maybe damaged."""
    value = draw(json_values)
    text = json.dumps(value, ensure_ascii=draw(st.booleans()), allow_nan=True)
    if draw(st.booleans()):
        text = text.replace("null", draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "01"])), 1)
    body = text.encode("utf-8", errors="surrogatepass")
    damage = draw(st.sampled_from(["none", "none", "byte", "cut", "bom"]))
    if damage == "byte" and body:
        at = draw(st.integers(0, len(body) - 1))
        body = body[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\\"])) + body[at:]
    elif damage == "cut":
        body = body[: draw(st.integers(0, len(body)))]
    elif damage == "bom":
        body = b"\xef\xbb\xbf" + body
    return body


def outcome_of(parse: Any, body: bytes) -> Any:
    try:
        return ("value", parse(body))
    except (ValueError, RecursionError):
        return ("error", None)


def same(a: Any, b: Any) -> bool:
    """Equal, with types: json keeps 2**70 an int, and 1 is not 1.0 in a feed."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


@settings(max_examples=400, deadline=None)
@given(body=bodies())
@example(body=b'{"code":200,"data":{"items":[{"item_id":123456789012345678901234567890}]}}')
@example(body=b'{"a":-9223372036854775809}')
@example(body=b'{"a":18446744073709551616}')
@example(body=b'{"a":"\\ud800"}')
@example(body=b'{"a":"\xed\xa0\x80"}')
@example(body=b"[" * 100_000)
def test_parse_json_fast_path_reads_every_body_as_the_careful_path_does(body: bytes) -> None:
    """orjson first, json only where orjson refuses: the same value (and type) or the same refusal."""
    assert same(outcome_of(parse_json, body), outcome_of(parse_json_carefully, body))


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
    assert "WARNING" not in result.stderr  # e.g. MetaRefreshMiddleware missing the RefererMiddleware


def too_deep_by_walking(record: Any, limit: int) -> bool:
    """The reference: every container with its level, on an explicit stack."""
    stack = [(record, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def nest(levels: int, inner: Any, kind: str) -> Any:
    for _ in range(levels):
        inner = [inner] if kind == "list" else {"k": inner}
    return inner


@settings(max_examples=300, deadline=None)
@given(value=json_values, levels=st.integers(0, 40), kind=st.sampled_from(["list", "dict"]), limit=st.integers(0, 40))
def test_too_deep_agrees_with_a_plain_walk(value: Any, levels: int, kind: str, limit: int) -> None:
    record = {"item_id": 1, "wrapped": nest(levels, value, kind), "flat": value}
    assert too_deep(record, limit) == too_deep_by_walking(record, limit)
    assert too_deep(value, limit) == too_deep_by_walking(value, limit)


@settings(max_examples=300, deadline=None)
@given(value=json_values, levels=st.integers(MAX_DEPTH - 8, MAX_DEPTH + 2), kind=st.sampled_from(["list", "dict"]))
def test_the_indented_text_settles_the_depth_as_the_walk_does(value: Any, levels: int, kind: str) -> None:
    """invalid_reason walks only records whose indented text reaches level MAX_DEPTH + 1: the verdict of a walk."""
    record = {"item_id": 1, "wrapped": nest(levels, value, kind), "flat": value}
    assert (invalid_reason(record) == "invalid_nesting") == too_deep_by_walking(record, MAX_DEPTH)


def test_too_deep_at_the_limit() -> None:
    assert not too_deep(nest(MAX_DEPTH, 1, "dict"))  # MAX_DEPTH levels of containers
    assert too_deep(nest(MAX_DEPTH + 1, 1, "dict"))
    assert too_deep(nest(MAX_DEPTH, [], "list"))  # the innermost empty list is one level more
    assert too_deep(nest(100_000, 1, "list"))  # stops at the limit: no RecursionError however deep
