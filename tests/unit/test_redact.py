"""Redactor: the token, raw or percent-encoded, inside any text, bytes, value or log record."""

from __future__ import annotations

import logging

from hypothesis import given, settings
from hypothesis import strategies as st

from tmapi_spiders.redact import MASK, Redactor, install_log_filter, remove_log_filter

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
    log_filter = install_log_filter(Redactor([TOKEN]), logger)
    try:
        logger.warning("url %s", f"https://x/?apiToken={TOKEN}")
        try:
            raise ValueError(f"bad {TOKEN}")
        except ValueError:
            logger.exception("failed")
    finally:
        remove_log_filter(log_filter, logger)
        logger.removeHandler(handler)
    text = "\n".join(records)
    assert "cret" not in text and text.count(MASK) == 2, text


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
