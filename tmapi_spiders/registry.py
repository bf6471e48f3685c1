"""Every setting of ours, once: name, type, default, bounds and a one-line doc.

settings.py takes its defaults from here, `check(settings)` validates them before the
first paid call with one message shape ("NAME must be ..., got VALUE"), and
`python -m tmapi_spiders.registry` writes docs/settings.md (a test fails when the
file and the registry differ). A component reads its settings with Scrapy's getters as
usual; it does not need to check them again.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from typing import Any

from scrapy.settings import BaseSettings


class ConfigError(ValueError):
    """A bad argument or setting: the message is the whole story, shown as one line."""


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # bool | int | float | str | choice | url
    default: Any
    doc: str
    group: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    env: bool = False  # the default is read from the environment variable of the same name
    unit: str = ""  # what a number counts ("seconds", "calls")
    zero: str = ""  # what 0 means, where it means something ("off", "no limit")

    def expected(self) -> str:
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "url":
            return "an http(s) URL"
        words = {"int": "a whole number", "float": "a number", "str": "text"}[self.kind]
        if self.unit:
            words += f" of {self.unit}"
        if self.low is not None and self.high is not None:
            words += f", from {self.low:g} to {self.high:g}"
        elif self.low is not None:
            words += f", {self.low:g} or more"
        if self.zero:
            words += f" (0: {self.zero})"
        return words


_RUN, _PAGING, _JOBS, _LIMITS, _REDIS = "Crawling", "Paging", "Running jobs", "Plan limits", "Distributed (Redis)"

SETTINGS: tuple[Setting, ...] = (
    # --- crawling
    Setting(
        "TMAPI_API_TOKEN",
        "str",
        "",
        "The API token (environment or -s). Never logged, stored or shown.",
        _RUN,
        env=True,
    ),
    Setting("TMAPI_BASE_URL", "url", "https://api.tmapi.io", "Where TMAPI answers.", _RUN, env=True),
    Setting(
        "TMAPI_AUTH",
        "choice",
        "auto",
        "How the token is sent: `header` (apikey), `query` (apiToken, as the endpoint page documents), or `auto`: "
        "the header, then the query parameter once if the gateway refuses it, kept for the job.",
        _RUN,
        choices=("auto", "header", "query"),
    ),
    Setting(
        "TMAPI_SANDBOX", "bool", False, "Start the bundled sandbox in-process and crawl it: no token, no cost.", _RUN
    ),
    Setting(
        "TMAPI_SANDBOX_PORT",
        "int",
        0,
        "Set by TMAPI_SANDBOX (the sandbox's loopback port, chosen at start); 0: not running.",
        _RUN,
        0,
        65535,
        zero="not running",
    ),
    Setting(
        "TMAPI_BACKOFF_BASE",
        "float",
        0.5,
        "Seconds before the first retry, doubled each time (0: no backoff).",
        _RUN,
        0,
        unit="seconds",
        zero="no backoff",
    ),
    Setting(
        "TMAPI_BACKOFF_MAX", "float", 30.0, "The longest wait before a retry, in seconds.", _RUN, 0, unit="seconds"
    ),
    Setting(
        "TMAPI_UNREACHABLE_AFTER",
        "int",
        10,
        "Stop (exit 3) after this many refused connections in a row before the API ever answered (0: never).",
        _RUN,
        0,
        unit="refused connections",
        zero="never",
    ),
    Setting("TMAPI_OUTPUT_DIR", "str", "output", "Where the default feed goes when no -o/-O is given.", _RUN),
    Setting(
        "TMAPI_FAILURES_FEED", "str", "", "The failures feed's URI (default: beside the first products feed).", _RUN
    ),
    # --- paging
    Setting(
        "TMAPI_STOP_ON_SHORT_PAGE",
        "bool",
        False,
        "A page with fewer items than the page size ends the image (saves a call; may miss items a backend "
        "filtered out of a page).",
        _PAGING,
    ),
    # --- running jobs
    Setting(
        "TMAPI_MAX_CALLS",
        "int",
        0,
        "Paid calls (searches + conversions) the job may make (0: no cap).",
        _JOBS,
        0,
        unit="calls",
        zero="no cap",
    ),
    Setting(
        "TMAPI_CACHE",
        "choice",
        "auto",
        "The answer store: every good answer kept on disk, so the same command again pays nothing for it. "
        "`auto`: on in one process, off for distributed workers and the sandbox.",
        _JOBS,
        choices=("auto", "true", "false", "1", "0", "yes", "no"),
    ),
    Setting("TMAPI_CACHE_DIR", "str", "tmapi-cache", "The answer store's directory (relative: under .scrapy).", _JOBS),
    Setting(
        "TMAPI_CACHE_TTL",
        "float",
        86400,
        "Seconds a stored answer is reused; older ones are pruned at start.",
        _JOBS,
        1,
        unit="seconds",
    ),
    Setting(
        "TMAPI_CACHE_MAX_MB",
        "float",
        0,
        "Pruned at start, oldest first, down to this size (0: no bound).",
        _JOBS,
        0,
        unit="megabytes",
        zero="no bound",
    ),
    Setting(
        "TMAPI_REFRESH",
        "bool",
        False,
        "Pay for every call again, replacing stored answers (or -a refresh=true).",
        _JOBS,
    ),
    Setting(
        "TMAPI_PROGRESS_INTERVAL",
        "float",
        10.0,
        "Seconds between progress lines (0: off).",
        _JOBS,
        0,
        unit="seconds",
        zero="off",
    ),
    Setting(
        "TMAPI_PROGRESS_BAR",
        "choice",
        "auto",
        "A live bar instead of the lines: `auto` when stderr is a terminal.",
        _JOBS,
        choices=("auto", "true", "false", "1", "0", "yes", "no"),
    ),
    Setting(
        "TMAPI_SUMMARY", "bool", True, "Write <feed stem>.summary.json beside the feeds, and a table in the log.", _JOBS
    ),
    Setting("TMAPI_SUMMARY_FILE", "str", "", "Write the summary here instead.", _JOBS),
    Setting("TMAPI_REPORT", "bool", False, "Write <feed stem>.report.html beside the feed (docs/report.md).", _JOBS),
    # --- plan limits
    Setting(
        "TMAPI_MAX_CONCURRENCY",
        "int",
        0,
        "Calls in flight across the whole job, every worker (0: no limit).",
        _LIMITS,
        0,
        unit="calls",
        zero="no limit",
    ),
    Setting(
        "TMAPI_MAX_QPS",
        "float",
        0,
        "Calls per second across the whole job (0: no limit).",
        _LIMITS,
        0,
        unit="calls per second",
        zero="no limit",
    ),
    Setting(
        "TMAPI_LIMIT_LEASE",
        "float",
        30.0,
        "Seconds a dead worker's slots stay taken (renewed while a call runs).",
        _LIMITS,
        0.1,
        unit="seconds",
    ),
    Setting(
        "TMAPI_LIMIT_POLL",
        "float",
        5.0,
        "Longest wait for a freed slot's wake token before looking at Redis again (finds a dead worker's slots).",
        _LIMITS,
        0.001,
        unit="seconds",
    ),
    # --- distributed
    Setting(
        "REDIS_URL",
        "str",
        "",
        "scrapy-redis's name: set it and this crawl becomes a worker of a shared job.",
        _REDIS,
        env=True,
    ),
    Setting("TMAPI_JOB", "str", "", "The job's name and Redis key prefix (default: the spider's name).", _REDIS),
    Setting(
        "TMAPI_WORKER_ID",
        "str",
        "",
        "This worker's id (default: host-pid-random); the %(worker)s feed placeholder.",
        _REDIS,
    ),
    Setting(
        "TMAPI_REDIS_LEASE",
        "float",
        60.0,
        "Seconds a taken request stays leased without a heartbeat.",
        _REDIS,
        0.1,
        unit="seconds",
    ),
    Setting(
        "TMAPI_REDIS_HEARTBEAT",
        "float",
        0.0,
        "Seconds between lease renewals (0: a quarter of the lease).",
        _REDIS,
        0,
        unit="seconds",
        zero="a quarter of the lease",
    ),
    Setting(
        "TMAPI_REDIS_ACK_INTERVAL",
        "float",
        0.2,
        "Seconds between looks for finished requests to acknowledge.",
        _REDIS,
        0.001,
        unit="seconds",
    ),
    Setting(
        "TMAPI_REDIS_POLL_INTERVAL",
        "float",
        1.0,
        "Seconds between looks for seeds when there are none (doubling up to 5 s, 20 s while busy, as others work).",
        _REDIS,
        0,
        unit="seconds",
    ),
    Setting("TMAPI_REDIS_SEED_BATCH", "int", 50, "Seeds taken per look.", _REDIS, 1, unit="seeds"),
    Setting(
        "TMAPI_REDIS_RETRY_TIMES",
        "int",
        5,
        "Reconnect attempts after Redis is lost, then stop (exit 4).",
        _REDIS,
        0,
        unit="attempts",
    ),
    Setting(
        "TMAPI_REDIS_RETRY_DELAY",
        "float",
        0.5,
        "Seconds before the first reconnect attempt, doubled each time.",
        _REDIS,
        0,
        unit="seconds",
    ),
    Setting(
        "TMAPI_REDIS_KEEP_STATS",
        "float",
        7 * 24 * 3600,
        "Seconds a finished job's counters stay for `scrapy job`.",
        _REDIS,
        0,
        unit="seconds",
    ),
    Setting(
        "TMAPI_REDIS_ACK_MAX_DELAY",
        "float",
        0.2,
        "Acknowledgements wait for 16 finished requests or this long: what a kill -9 can make the job pay again.",
        _REDIS,
        0,
        unit="seconds",
        zero="every look",
    ),
    Setting(
        "TMAPI_REDIS_DUPEFILTER_TTL",
        "float",
        0.0,
        "Seconds a duplicate-filter fingerprint counts; bounds the filter. Keep it well above the longest queue wait.",
        _REDIS,
        0,
        unit="seconds",
        zero="until the job is finished",
    ),
    Setting("REDIS_TLS_CA_FILE", "str", "", "rediss://: the CA bundle that signed the server's certificate.", _REDIS),
    Setting("REDIS_TLS_CERT_FILE", "str", "", "rediss://: a client certificate, for servers that ask for one.", _REDIS),
    Setting("REDIS_TLS_KEY_FILE", "str", "", "rediss://: the client certificate's private key.", _REDIS),
    Setting(
        "REDIS_TLS_VERIFY",
        "bool",
        True,
        "Check the server's certificate and host name (false: test servers only).",
        _REDIS,
    ),
    Setting(
        "REDIS_CLUSTER", "bool", False, "REDIS_URL is a node of a Redis Cluster (or use redis+cluster://).", _REDIS
    ),
    Setting(
        "REDIS_SENTINELS",
        "str",
        "",
        "host:port,host:port of the sentinels (or redis+sentinel://h:p,h:p/master/0).",
        _REDIS,
        env=True,
    ),
    Setting("REDIS_SENTINEL_MASTER", "str", "", "The master's name the sentinels watch.", _REDIS),
    Setting(
        "REDIS_SENTINEL_PASSWORD",
        "str",
        "",
        "The sentinels' own password, if any (the master's is in REDIS_URL).",
        _REDIS,
    ),
    Setting(
        "MAX_IDLE_TIME_BEFORE_CLOSE",
        "float",
        10,
        "scrapy-redis's name: stop a worker when the job is drained this long (0: never).",
        _REDIS,
        0,
        unit="seconds",
        zero="never",
    ),
    Setting("SCHEDULER_PERSIST", "bool", False, "scrapy-redis's name: keep a finished job's keys.", _REDIS),
)
BY_NAME = {setting.name: setting for setting in SETTINGS}


def defaults() -> dict[str, Any]:
    """What settings.py sets: each default, or its environment variable where it has one."""
    return {s.name: os.environ.get(s.name, s.default) if s.env else s.default for s in SETTINGS}


def _value(setting: Setting, settings: BaseSettings) -> Any:
    getter = {"bool": settings.getbool, "int": settings.getint, "float": settings.getfloat}.get(setting.kind)
    raw = settings.get(setting.name)
    if getter is None:
        return str(raw).strip().lower() if setting.kind == "choice" else str(raw)
    value = getter(setting.name)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(raw)
    return value


def read(settings: BaseSettings, name: str) -> Any:
    """The setting's value, typed and checked (its default when unset, or empty for a number);
    ConfigError in the one message shape otherwise. Components read their settings with it
    instead of parsing and checking them again."""
    setting = BY_NAME[name]
    raw = settings.get(name)
    if raw is None or (raw == "" and setting.kind in ("int", "float")):
        return setting.default
    try:
        value = _value(setting, settings)
    except ValueError:
        raise ConfigError(f"{name} must be {setting.expected()}, got {raw!r}") from None
    bad = (
        (setting.kind == "choice" and value not in setting.choices)
        or (setting.kind == "url" and not value.startswith(("http://", "https://")))
        or (setting.low is not None and value < setting.low)
        or (setting.high is not None and value > setting.high)
    )
    if bad:
        raise ConfigError(f"{name} must be {setting.expected()}, got {raw!r}")
    return value


def check(settings: BaseSettings) -> None:
    """Raise ConfigError for the first setting outside its type, bounds or choices."""
    for setting in SETTINGS:
        if settings.get(setting.name) is not None:  # unset: settings built without the project's defaults
            read(settings, setting.name)


def reference() -> str:
    """docs/settings.md: every setting by group, as a table."""
    lines = [
        "# Settings reference",
        "",
        "Generated from `tmapi_spiders/registry.py` by `python -m tmapi_spiders.registry > docs/settings.md`;",
        "a test fails when the two differ. Set any of them with `-s NAME=VALUE`, in a project's",
        "`settings.py`, or (where marked) in the environment. A bad value stops the crawl before",
        "the first call with one line: `NAME must be ..., got VALUE`.",
        "",
        "Scrapy's own settings (CONCURRENT_REQUESTS, DOWNLOAD_TIMEOUT, RETRY_TIMES, FEEDS, ...) work",
        "as Scrapy documents them; this project's defaults for them are in `tmapi_spiders/settings.py`.",
    ]
    groups: dict[str, list[Setting]] = {}
    for setting in SETTINGS:
        groups.setdefault(setting.group, []).append(setting)
    for group, members in groups.items():
        lines += ["", f"## {group}", "", "| setting | default | allowed | what it does |", "| --- | --- | --- | --- |"]
        for s in members:
            default = "(empty)" if s.default == "" else str(s.default).lower() if s.kind == "bool" else str(s.default)
            env = " Environment variable too." if s.env else ""
            lines.append(f"| `{s.name}` | `{default}` | {s.expected()} | {s.doc}{env} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(reference())
