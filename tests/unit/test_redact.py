"""Redactor: the token, raw or percent-encoded, inside any text, bytes, value or log record."""

from __future__ import annotations

import json
import logging

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tmapi_spiders.api.redact import MASK, Redactor

TOKEN = "tok/Se cret+1"


def test_every_written_form_is_masked() -> None:
    r = Redactor([TOKEN])
    for text in (f"x {TOKEN} y", "q=tok%2FSe%20cret%2B1", "q=tok%2fse+cret%2b1&b=2", "Apikey: TOK/SE CRET+1"):
        out = r.text(text)
        assert MASK in out and "cret" not in out.lower(), (text, out)
    assert r.bytes(f"Apikey: {TOKEN}".encode()) == f"Apikey: {MASK}".encode()
    assert r.value({"a": [TOKEN, 1], TOKEN: (None, TOKEN)}) == {"a": [MASK, 1], MASK: (None, MASK)}
    assert r.found_in(f"..{TOKEN}..") and not r.found_in("tok/Se")


def test_nothing_to_redact_leaves_text_alone() -> None:
    for r in (Redactor([]), Redactor(["", None]), Redactor(["abc"])):  # too short to be a token
        assert not r
        assert r.text("abc def") == "abc def"


def test_log_filter_masks_message_arguments_and_exception() -> None:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    logger = logging.getLogger("test_redact")
    handler = Keep()
    logger.addHandler(handler)
    logger.propagate = False
    handler.addFilter(Redactor([TOKEN]))  # as LogRedaction puts it on every handler
    try:
        logger.warning("url %s", f"https://x/?apiToken={TOKEN}")
        try:
            raise ValueError(f"bad {TOKEN}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = "\n".join(records)
    assert "se cret" not in text.lower() and text.count(MASK) == 2, text  # not "cret": a checkout path may hold it


@settings(max_examples=300, deadline=None)
@given(
    secret=st.text(alphabet="aZ9-_/+ %éK", min_size=4, max_size=8),
    before=st.binary(max_size=30),
    after=st.binary(max_size=30),
    form=st.integers(0, 3),
    case=st.sampled_from(["as is", "upper", "lower", "swap"]),
    inside=st.booleans(),
)
def test_found_in_bytes_says_what_the_bytes_redaction_would_change(
    secret: str, before: bytes, after: bytes, form: int, case: str, inside: bool
) -> None:
    """The fast search (lowercase, substring) agrees with the case-insensitive pattern it replaced."""
    from urllib.parse import quote, quote_plus

    redactor = Redactor([secret])
    written = [secret, quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret)][form].encode()
    written = {"as is": written, "upper": written.upper(), "lower": written.lower(), "swap": written.swapcase()}[case]
    data = before + (written if inside else b"") + after
    assert redactor.found_in_bytes(data) == (redactor.bytes(data) != data)
    assert not Redactor([]).found_in_bytes(data)


SLASHED = "tk/9+Q=x/Z_a"  # a token with `/`, `+`, `=` and `_`, as real tokens are


def json_escaped(secret: str, how: str) -> str:
    """`secret` as a server may write it inside a JSON string."""
    if how == "php":  # json_encode's default: every `/` as `\/`
        return secret.replace("/", "\\/")
    if how == "unicode":
        return "".join(f"\\u{ord(c):04x}" for c in secret)
    if how == "UNICODE":
        return "".join(f"\\u{ord(c):04X}" for c in secret)
    # mixed: plain, \u lower, \u upper, percent, in turn; `/` as `\/` when plain
    out = []
    for i, c in enumerate(secret):
        plain = "\\/" if c == "/" else c
        out.append([plain, f"\\u{ord(c):04x}", f"\\u{ord(c):04X}", f"%{ord(c):02x}"][i % 4])
    return "".join(out)


def test_json_escaped_forms_are_masked_in_text_and_bytes() -> None:
    r = Redactor([SLASHED])
    for how in ("php", "unicode", "UNICODE", "mixed"):
        written = json_escaped(SLASHED, how)
        body = '{"code":500,"msg":"upstream error (apikey: ' + written + ')"}'
        assert r.found_in(body) and r.found_in_bytes(body.encode()), how
        out = r.bytes(body.encode())
        assert out == b'{"code":500,"msg":"upstream error (apikey: [redacted])"}', (how, out)
        assert json.loads(out)["msg"].endswith("[redacted])")
        assert r.text(json.loads(body)["msg"]) == "upstream error (apikey: [redacted])"  # decoded, then redacted
    beyond = Redactor(["ab\U0001f600cd"])  # outside the BMP: a surrogate pair in JSON
    assert beyond.found_in_bytes(json.dumps("x ab\U0001f600cd y").encode())


def test_json_escapes_of_other_text_are_left_alone() -> None:
    r = Redactor([SLASHED])
    body = json.dumps({"url": "https://x/tk/9", "t": "\u00e9t\u00e9 tk 9"}).replace("/", "\\/").encode()
    assert not r.found_in_bytes(body) and r.bytes(body) == body


@settings(max_examples=300, deadline=None)
@given(
    secret=st.text(alphabet="aZ9-_/+=%é", min_size=4, max_size=10),
    before=st.text(alphabet='a\\/u0%"2f', max_size=12),
    after=st.text(alphabet='a\\/u0%"2f', max_size=12),
    forms=st.lists(st.integers(0, 4), min_size=10, max_size=10),
)
def test_every_mix_of_escapes_is_found_and_masked(secret: str, before: str, after: str, forms: list[int]) -> None:
    """Each character as itself, `\\/`, `\\u` (either hex case) or `%XX`, in any mix: found
    by the fast search and masked by the pattern, in text and in bytes."""
    written = []
    for char, form in zip(secret, forms, strict=False):
        utf16 = char.encode("utf-16-be").hex()
        percent = "".join(f"%{b:02X}" for b in char.encode())
        options = [char, "\\/" if char == "/" else char, f"\\u{utf16}", f"\\u{utf16.upper()}", percent]
        written.append(options[form])
    data = before + "".join(written) + after
    r = Redactor([secret])
    assert r.found_in_bytes(data.encode()) and r.found_in(data)
    assert MASK in r.text(data) and MASK.encode() in r.bytes(data.encode())
    assert r.found_in_bytes(data.encode()) == (r.bytes(data.encode()) != data.encode())


def written_forms(char: str) -> list[str]:
    """Ways a server may write `char`: itself in either case (ASCII: the bytes pattern folds no other letter),
    `\\u` or `%` escapes in either hex case, a short JSON escape, `+` for a space."""
    utf16 = char.encode("utf-16-be").hex()
    unicode = "".join(f"\\u{utf16[i : i + 4]}" for i in range(0, len(utf16), 4))
    percent = "".join(f"%{b:02x}" for b in char.encode())
    short = {"/": "\\/", '"': '\\"', "\\": "\\\\", "\n": "\\n"}.get(char, char)
    return [
        char,
        char.swapcase() if char.isascii() else char,
        unicode,
        unicode.upper(),
        percent,
        percent.upper(),
        short,
        "+" if char == " " else char,
    ]


NOISE = ["%", "%2", "%22", "\\", "\\u", "\\u00", "\\U00", "\\u4e2d", "\\/", "+", "47.3%", "a", "B", "9"]


@settings(max_examples=500, deadline=None)
@example(secret="ab/9", before=[], after=[], forms=[0, 0, 6, 0, 0, 0, 0, 0], broken=None, at=0)  # `\/` alone
@given(
    secret=st.text(alphabet='aB9-_/+ %é"\\\n中', min_size=4, max_size=8),
    before=st.lists(st.sampled_from(NOISE), max_size=6),
    after=st.lists(st.sampled_from(NOISE), max_size=6),
    forms=st.lists(st.integers(0, 7), min_size=8, max_size=8),
    broken=st.sampled_from([None, "dropped", "cut escape"]),
    at=st.integers(0, 7),
)
def test_found_in_bytes_agrees_with_the_pattern_on_escaped_bodies(
    secret: str, before: list[str], after: list[str], forms: list[int], broken: str | None, at: int
) -> None:
    """The secret written a character at a time in any mix of forms, whole or with one character dropped or
    its escape cut short, among partial escapes, escapes of other characters, `%` and `+`: the fast check
    says exactly what the pattern finds."""
    written = [written_forms(char)[form] for char, form in zip(secret, forms, strict=False)]
    at %= len(written)
    if broken == "dropped":
        del written[at]
    elif broken == "cut escape":
        written[at] = written[at][:-1]
    data = ("".join(before) + "".join(written) + "".join(after)).encode()
    r = Redactor([secret])
    assert r._bytes_pattern is not None
    found = r._bytes_pattern.search(data) is not None
    assert r.found_in_bytes(data) == found == (r.bytes(data) != data), data
    if broken is None:
        assert found


def test_a_record_field_escaped_twice_reaches_the_spider_redacted() -> None:
    """`\\u0025` before `2F` and `\\\\/` spell the token only once the JSON is read (`%2F`, `\\/`): the
    envelope middleware reads the decoded strings again when the body holds such an escape."""
    from scrapy import Request, Spider
    from scrapy.http import Response
    from scrapy.utils.test import get_crawler

    from tmapi_spiders.api.requests import ENVELOPE_META
    from tmapi_spiders.crawl.middlewares import TmapiEnvelopeMiddleware

    token = "tk/9+Q=x/Z_a"
    envelope = TmapiEnvelopeMiddleware.from_crawler(get_crawler(Spider, {"TMAPI_API_TOKEN": token}))
    titles = {
        "percent, its % escaped": token.replace("/", "\\u00252F").replace("+", "\\u00252B").replace("=", "%3D"),
        "PHP's slash, escaped again": token.replace("/", "\\\\/"),
    }
    for name, title in titles.items():
        items = f'[{{"item_id": 1, "title": "x {title} y", "shop_info": {{"url": "https://s/?k={title}"}}}}]'
        body = f'{{"code": 200, "msg": "ok", "data": {{"total_count": 1, "items": {items}}}}}'.encode()
        request = Request(
            "https://api.example/1688/global/search/image?img_url=x",
            meta={"tmapi_endpoint": "search", "tmapi": {"q": {"page_size": 20}}},
        )
        envelope.process_response(request, Response(request.url, body=body))
        item = request.meta[ENVELOPE_META].data["items"][0]
        assert item == {"item_id": 1, "title": f"x {MASK} y", "shop_info": {"url": f"https://s/?k={MASK}"}}, name
