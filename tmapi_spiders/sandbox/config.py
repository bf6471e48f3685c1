"""Every sandbox option in one dataclass; the defaults switch every fault and limit off."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from tmapi_spiders.sandbox import spec
from tmapi_spiders.sandbox.faults import FAULT_KINDS, OPT_IN_FAULTS

DEFAULT_TOKEN = spec.SANDBOX_TOKEN
DEFAULT_FAULT_KINDS = tuple(kind for kind in FAULT_KINDS if kind not in OPT_IN_FAULTS)
AUTH_WAYS = ("both", "query", "header")
COMPRESSIONS = ("gzip", "deflate", "br", "none")
ECHO_ESCAPES = ("none", "slash", "unicode", "mixed")
RETRY_AFTER_FORMS = ("none", "seconds", "date")


@dataclass(frozen=True)
class SandboxConfig:
    """Options of one sandbox server. Invalid values fail at construction, naming the field."""

    tokens: tuple[str, ...] = ()  # accepted API tokens; none given means just "sandbox"
    broke_tokens: tuple[str, ...] = ()  # valid tokens whose balance is spent: HTTP 439
    deny_patterns: tuple[str, ...] = ()  # regexes: converting a matching URL is denied (422)
    convert_timeout_patterns: tuple[str, ...] = ()  # regexes: the first conversion times out (422)
    unrecognised_patterns: tuple[str, ...] = ()  # regexes: searching a matching URL unconverted answers 422
    # A search backend's hiccup: the first `empty_times` asks of page `empty_page` of a matching
    # image answer `items: []` with the real total_count (later asks are answered in full).
    empty_patterns: tuple[str, ...] = ()
    empty_page: int = 1
    empty_times: int = 1
    string_code_patterns: tuple[str, ...] = ()  # regexes: a matching image's pages carry "code": "200", a string
    redirect_patterns: tuple[str, ...] = ()  # regexes: searching a matching image answers 302 (Location: the call)
    latency: float = 0.0  # seconds added to every API call
    jitter: float = 0.0  # plus up to this many seconds, uniformly
    fault_rate: float = 0.0  # share of API calls that get a fault, 0..1
    fault_kinds: tuple[str, ...] = DEFAULT_FAULT_KINDS  # which faults to draw from (faults.FAULT_KINDS)
    slow_seconds: float = 90.0  # the latency spike of the `slow` fault
    seed: int = 0  # seeds the fault and jitter decisions
    max_concurrency: int = 0  # calls in flight beyond this answer 503 (0 = no limit)
    max_qps: float = 0.0  # calls per sliding second beyond this answer 503 (0 = no limit)
    # The network between client and gateway: each API call waits up to this many seconds
    # (uniformly, from `seed`) before the gateway sees it, so calls sent evenly arrive unevenly.
    network_jitter: float = 0.0
    rate_limit: float = 0.0  # the gateway's rate limit: calls per sliding second beyond this answer 429 (0 = none)
    retry_after: str = "none"  # Retry-After on 429 and 503 answers: "none", "seconds" or "date" (an HTTP-date)
    retry_after_seconds: float = 0.0  # the distance Retry-After gives (0: until the limit admits a call, at least 1 s)
    repeat_rate: float = 0.0  # share of items on page p>1 repeated from page p-1
    overstate: float = 0.0  # total_count is reported this fraction larger than the real count
    cache_size: int = 1024  # image catalogues kept in memory (LRU)
    max_call_records: int = 200_000  # call records kept for /_sandbox/calls (oldest dropped)
    # What a real gateway in front of the API does (on by default where gateways do it):
    auth: str = "both"  # where the token is read: "query" (apiToken, the endpoint page), "header" (apikey), "both"
    compress: str = "gzip"  # "gzip", "deflate" or "br" the body whenever the client's Accept-Encoding allows; "none"
    chunked: bool = True  # send bodies with Transfer-Encoding: chunked (no Content-Length)
    echo_errors: bool = False  # error answers quote the request's headers and query (token included)
    # How the echoed text is escaped inside the JSON string: "none" (as written), "slash" (every
    # `/` as `\/`, as PHP's json_encode writes it), "unicode" (every character `\uXXXX`),
    # "mixed" (as written, `\u` lower-case hex, `\u` upper-case hex, `%XX`, in turn).
    echo_escape: str = "none"
    # What a search backend does with paging:
    max_page_size: int = 20  # the backend's own page size: a larger page_size is cut to it (and said so)
    filter_per_page: int = 0  # items dropped from every page after paging (total_count unchanged)
    stuck_after: int = 0  # pages after this one repeat its items (0: never)
    report_total: int = 0  # total_count reported whatever the pages hold (0: the real count)
    # Which "day" the catalogue is on: 0 as always; N moves prices, MOQ, sales and badges and
    # replaces offers by the changes of days 1..N (days.py), for watching a list over time.
    day: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
        if not self.tokens:
            object.__setattr__(self, "tokens", (DEFAULT_TOKEN,))
        for name in (
            "latency",
            "jitter",
            "slow_seconds",
            "max_qps",
            "network_jitter",
            "rate_limit",
            "retry_after_seconds",
            "repeat_rate",
            "overstate",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be 0 or more, got {getattr(self, name)!r}")
        if not 0 <= self.fault_rate <= 1:
            raise ValueError(f"fault_rate: must be from 0 to 1, got {self.fault_rate!r}")
        if self.repeat_rate > 1:
            raise ValueError(f"repeat_rate: must be from 0 to 1, got {self.repeat_rate!r}")
        unknown = [kind for kind in self.fault_kinds if kind not in FAULT_KINDS]
        if unknown or (self.fault_rate > 0 and not self.fault_kinds):
            raise ValueError(f"fault_kinds: {unknown or 'none'} given; choose from {', '.join(FAULT_KINDS)}")
        if self.compress not in COMPRESSIONS:
            raise ValueError(f"compress: must be one of {', '.join(COMPRESSIONS)}, got {self.compress!r}")
        if self.echo_escape not in ECHO_ESCAPES:
            raise ValueError(f"echo_escape: must be one of {', '.join(ECHO_ESCAPES)}, got {self.echo_escape!r}")
        if self.retry_after not in RETRY_AFTER_FORMS:
            raise ValueError(f"retry_after: must be one of {', '.join(RETRY_AFTER_FORMS)}, got {self.retry_after!r}")
        if self.auth not in AUTH_WAYS:
            raise ValueError(f"auth: must be one of {', '.join(AUTH_WAYS)}, got {self.auth!r}")
        if not 1 <= self.max_page_size <= 20:
            raise ValueError(f"max_page_size: must be from 1 to 20, got {self.max_page_size!r}")
        counts = (
            "max_concurrency",
            "cache_size",
            "max_call_records",
            "filter_per_page",
            "stuck_after",
            "report_total",
            "empty_times",
            "day",
        )
        for name in counts:
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name}: must be an integer of 0 or more, got {getattr(self, name)!r}")
        if not isinstance(self.empty_page, int) or self.empty_page < 1:
            raise ValueError(f"empty_page: must be an integer of 1 or more, got {self.empty_page!r}")
        if self.cache_size < 1:
            raise ValueError("cache_size: must be at least 1")
        patterns = ("deny_patterns", "convert_timeout_patterns", "unrecognised_patterns", "empty_patterns")
        for name in (*patterns, "string_code_patterns", "redirect_patterns"):
            for pattern in getattr(self, name):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"{name}: {pattern!r} is not a regular expression ({exc})") from None
