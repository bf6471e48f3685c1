"""A seed (one image URL of a list) and its check: a bad line is reported with its number and why, and
skipped."""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from tmapi_spiders.api import contract
from tmapi_spiders.api.redact import Redactor

MAX_URL_LENGTH = 4096
BAD_LINES_LOGGED = 50  # a crawl's log warns of this many bad lines; the stats count them all
INTERNAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")
NUMERIC_HOST = re.compile(r"(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}")
_CONTROL = re.compile("[\x00-\x1f\x7f\ufffd]")


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
    if host in INTERNAL_NAMES or host.endswith(INTERNAL_SUFFIXES):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        # `127.1`, `0177.0.0.1`, `0x7f.1`: shorthand that fetchers resolve like inet_aton does.
        if not NUMERIC_HOST.fullmatch(host):
            return "." not in host  # a bare name only resolves inside a network
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return "." not in host
    return not address.is_global
