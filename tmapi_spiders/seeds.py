"""Seed lists: one image URL per line, streamed, validated, de-duplicated.

Reading is lazy so a list of 100,000 lines never sits whole in the scheduler; a
bad line is reported with its number and skipped, never searched.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tmapi_spiders import contract
from tmapi_spiders.identity import image_key
from tmapi_spiders.redact import Redactor

logger = logging.getLogger(__name__)

MAX_URL_LENGTH = 4096
_INTERNAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_NUMERIC_HOST = re.compile(r"(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}")


class SeedError(ValueError):
    """The seed list as a whole cannot be used (unreadable, empty)."""


@dataclass(frozen=True)
class Seed:
    url: str
    line: int  # the line of a text list, the row of a spreadsheet (sheets.py)
    # A spreadsheet row's other columns (sheets.py), carried into the image's records with
    # `line` as `input_row`; None for a text list.
    input: dict[str, Any] | None = None


@dataclass(frozen=True)
class BadLine:
    line: int
    reason: str


TOKEN_REASON = "carries the API token"
CREDENTIALS_REASON = "carries credentials (user:pass@)"


def check_image_url(value: str, redactor: Redactor | None = None) -> str | None:
    """Why `value` cannot be searched, or None when it can.

    `redactor` knows the API token: a line carrying it (raw or percent-encoded) is
    refused first, so no later reason (which may quote the host or scheme) repeats it,
    and it never reaches a request, Redis or a feed."""
    if redactor and redactor.found_in(value):
        return TOKEN_REASON
    if len(value) > MAX_URL_LENGTH:
        return f"longer than {MAX_URL_LENGTH} characters"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value) or "\ufffd" in value:
        return "contains control characters or undecodable bytes"
    if value.startswith(contract.CONVERTED_PREFIX):
        return None if contract.is_converted_path(value) else "empty converted path"
    if " " in value:
        return "contains spaces"
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        scheme = parts.scheme or "no scheme"
        return f"not an http(s) URL or a converted /search/ path ({scheme})"
    if not host:
        return "URL has no host"
    if _is_internal(host):
        return f"internal address {host} (TMAPI cannot fetch it)"
    if "@" in parts.netloc:  # a password in a seed would be sent to TMAPI and written to every feed
        return CREDENTIALS_REASON
    return None


def _is_internal(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host in _INTERNAL_NAMES or host.endswith(".localhost") or host.endswith(".local"):
        return True
    if host.endswith((".internal", ".home.arpa")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        legacy = _legacy_ipv4(host)
        if legacy is None:
            return "." not in host  # a bare name only resolves inside a network
        address = legacy
    return not address.is_global


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """`127.1`, `0177.0.0.1`, `0x7f.1`: shorthand that fetchers resolve like inet_aton does."""
    if not _NUMERIC_HOST.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def parse_lines(lines: Iterable[bytes], redactor: Redactor | None = None) -> Iterator[Seed | BadLine]:
    """Seeds and bad lines in file order; blank lines and `#` comments are skipped,
    a BOM and CRLF line ends are accepted, and a repeated URL is yielded once.
    `redactor` (the API token) refuses lines that carry it (check_image_url)."""
    seen: set[str] = set()
    for number, raw in enumerate(lines, 1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if len(raw) > MAX_URL_LENGTH * 4:
            yield BadLine(number, f"longer than {MAX_URL_LENGTH} characters")
            continue
        text = raw.decode("utf-8", errors="replace").strip()
        if not text or text.startswith("#"):
            continue
        reason = check_image_url(text, redactor)
        if reason:
            yield BadLine(number, reason)
            continue
        # One list has one query for every line: the image alone is the search (identity.py).
        key = image_key(text)
        if key in seen:
            continue
        seen.add(key)
        yield Seed(key, number)  # the canonical spelling is what is searched and recorded


def open_lines(path: str | Path) -> Iterator[bytes]:
    """Lines of a seed file as bytes (decoded per line, so one bad byte costs one line)."""
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise SeedError(f"cannot read urls_file {str(path)!r}: {exc.strerror or exc}") from None
    with handle:
        yield from handle


def inline_lines(urls: str) -> list[bytes]:
    return [part.strip().encode() for part in urls.split(",")]


def preflight(lines: Iterable[bytes], source: str, redactor: Redactor | None = None) -> tuple[int, int]:
    """(valid, bad) counts of a whole text list; raises SeedError when nothing is searchable."""
    return preflight_entries(parse_lines(lines, redactor), source)


def preflight_entries(entries: Iterable[Seed | BadLine], source: str, unit: str = "line") -> tuple[int, int]:
    """(valid, bad) counts of a whole list's entries (a text list's lines, a spreadsheet's
    rows: `unit`); raises SeedError when nothing is searchable.

    Run before the crawl so an unusable list costs no paid call."""
    valid = bad = 0
    first_bad: BadLine | None = None
    for entry in entries:
        if isinstance(entry, Seed):
            valid += 1
        else:
            bad += 1
            first_bad = first_bad or entry
    if not valid:
        detail = f" ({bad} bad {unit}s; {unit} {first_bad.line}: {first_bad.reason})" if first_bad else ""
        raise SeedError(f"{source} has no searchable image URL{detail}")
    return valid, bad
