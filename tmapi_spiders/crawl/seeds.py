"""Seed lists: one image URL per line, read lazily, validated and de-duplicated; a bad line is reported
with its number and skipped."""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from tmapi_spiders.api import contract
from tmapi_spiders.api.identity import DEFAULT_PORTS, image_key
from tmapi_spiders.api.redact import Redactor

MAX_URL_LENGTH = 4096
BAD_LINES_LOGGED = 50  # a crawl's log warns of this many bad lines; the stats count them all
_INTERNAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_NUMERIC_HOST = re.compile(r"(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}")
_CONTROL = re.compile("[\x00-\x1f\x7f\ufffd]")
# Most lines of a catalogue export: a plain http(s) URL, checked and keyed without urllib (plain_key).
_PLAIN = re.compile(
    r"(https?)://([a-z0-9-]+(?:\.[a-z0-9-]+)+)(?::(80|443))?(/[^\x00-\x20\x7f#@\\\ufffd]*)?(#[^\x00-\x20\x7f\ufffd]*)?",
    re.ASCII | re.IGNORECASE,
)
_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")


class SeedError(ValueError):
    """The seed list as a whole cannot be used (unreadable, empty)."""


class Seed(NamedTuple):  # a tuple: cheap by the million
    url: str
    line: int  # the line of a text list, the row of a spreadsheet
    # A spreadsheet row's other columns, carried into the image's records.
    input: dict[str, Any] | None = None


class BadLine(NamedTuple):
    line: int
    reason: str

    def skipped(self, source: str, unit: str) -> str:
        """The one warning for a skipped line, wherever a list is read (`unit`: line or row)."""
        return f"{source} {unit} {self.line} skipped: {self.reason}"


TOKEN_REASON = "carries the API token"
CREDENTIALS_REASON = "carries credentials (user:pass@)"


def check_image_url(value: str, redactor: Redactor | None = None) -> str | None:
    """Why `value` cannot be searched, or None; the API token (`redactor`) is refused first, unquoted."""
    if redactor and redactor.found_in(value):
        return TOKEN_REASON
    if len(value) > MAX_URL_LENGTH:
        return f"longer than {MAX_URL_LENGTH} characters"
    if _CONTROL.search(value):
        return "contains control characters or undecodable bytes"
    if value.startswith(contract.CONVERTED_PREFIX):
        return "empty converted path" if value == contract.CONVERTED_PREFIX else None
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
    if host in _INTERNAL_NAMES or host.endswith(_INTERNAL_SUFFIXES):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        # `127.1`, `0177.0.0.1`, `0x7f.1`: shorthand that fetchers resolve like inet_aton does.
        if not _NUMERIC_HOST.fullmatch(host):
            return "." not in host  # a bare name only resolves inside a network
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return "." not in host
    return not address.is_global


def plain_key(text: str) -> str | None:
    """The image key of a plain URL check_image_url accepts, without urllib; None: take the full path."""
    match = _PLAIN.fullmatch(text)
    if match is None or len(text) > MAX_URL_LENGTH:
        return None
    scheme, host, port, path, _fragment = match.groups()
    if path and path.endswith("?"):
        return None  # urllib drops a bare trailing "?"
    scheme, host = scheme.lower(), host.lower()
    if port and int(port) != DEFAULT_PORTS[scheme]:
        return None
    if host in _INTERNAL_NAMES or host.endswith(_INTERNAL_SUFFIXES) or _NUMERIC_HOST.fullmatch(host):
        return None
    if host.rpartition(".")[2].isdigit():
        return None
    return f"{scheme}://{host}{path or ''}"


def seed_digest(key: str) -> int:
    """A 16-byte digest of an image key, as an int (small in a list's duplicate set)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest())


def seed_key(text: str, redactor: Redactor | None, suspect: bool) -> tuple[str | None, str]:
    """(the image's key, "") or (None, why the line is bad); a `suspect` line takes the full check."""
    key = None if suspect else plain_key(text)
    if key is not None:
        return key, ""
    reason = check_image_url(text, redactor)
    return (None, reason) if reason else (image_key(text), "")


def parse_lines(lines: Iterable[bytes], redactor: Redactor | None = None) -> Iterator[Seed | BadLine]:
    """Seeds and bad lines in file order: blanks and `#` comments skipped, BOM and CRLF accepted, a repeated
    URL yielded once."""
    seen: set[int] = set()
    for number, raw in enumerate(lines, 1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if len(raw) > MAX_URL_LENGTH * 4:
            yield BadLine(number, f"longer than {MAX_URL_LENGTH} characters")
            continue
        text = raw.decode("utf-8", errors="replace").strip()
        if not text or text.startswith("#"):
            continue
        key, reason = seed_key(text, redactor, redactor is not None and redactor.found_in(text))
        if key is None:
            yield BadLine(number, reason)
            continue
        digest = seed_digest(key)
        if digest in seen:
            continue
        seen.add(digest)
        yield Seed(key, number)  # the canonical spelling is what is searched and recorded
