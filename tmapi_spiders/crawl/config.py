"""A job's configuration from spider arguments and settings, checked before any paid call; `scrapy crawl`,
`scrapy seed` and the spider all use `job_config`, so a bad argument is the same one line everywhere."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scrapy.settings import BaseSettings

from tmapi_spiders import registry
from tmapi_spiders.api import auth, contract
from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.crawl import seed_reading, seeds
from tmapi_spiders.registry import ConfigError
from tmapi_spiders.spreadsheets import sheets, sourcing
from tmapi_spiders.spreadsheets.currency import CURRENCY_ARGS, Currency, currency_from

__all__ = ["ConfigError", "JobConfig", "check_seed_list", "check_setting_names", "check_settings", "job_config"]

QUERY_ARGS = ("language", "sort", "page_size", *contract.FILTERS)
SEED_ARGS = ("urls_file", "urls")
# refresh: pay again instead of reusing stored answers; sourcing.CHOICE_ARGS pick the best offers.
JOB_ARGS = (*SEED_ARGS, *sheets.SHEET_ARGS, "max_pages", *QUERY_ARGS, "refresh", *CURRENCY_ARGS, *sourcing.CHOICE_ARGS)
# scrapyd adds these spider arguments to every job it runs (`-a _job=<id>`, `-a _version=...`).
SCRAPYD_ARGS = ("_job", "_version")
NO_SEEDS = (
    "no seeds: give -a urls_file=PATH (one image URL per line, or a .csv/.xlsx with an image column)"
    " or -a urls=URL1,URL2"
)


@dataclass(frozen=True)
class JobConfig:
    query: contract.SearchQuery
    max_pages: int  # 0: no limit beyond total_count
    urls_file: str | None
    urls: str | None
    # The API token: seed lines carrying it are bad lines.
    redactor: Redactor = field(default_factory=lambda: Redactor(()), compare=False, repr=False)
    refresh: bool = False  # -a refresh=true: stored answers are not reused this run
    spreadsheet: sheets.SheetList | None = None  # a .csv or .xlsx urls_file
    currency: Currency | None = None
    choice: sourcing.Choice = field(default_factory=sourcing.Choice)

    def read_seeds(self) -> seed_reading.SeedSource:
        """The job's seed list, read lazily (a spreadsheet's rows or a text list's lines); SeedError if unopenable."""
        if self.spreadsheet is not None:
            return seed_reading.SeedSource(self.spreadsheet.entries(self.seed_source, self.redactor))
        return seed_reading.text_list(self.urls_file, self.urls, self.redactor)

    @property
    def seed_unit(self) -> str:
        """What a bad entry is called in messages: a spreadsheet's (CSV, XLSX) row, a text list's line."""
        return "row" if self.spreadsheet else "line"

    @property
    def seed_source(self) -> str:
        return f"urls_file {self.urls_file!r}" if self.urls_file else "urls argument"


def query_from_args(args: dict[str, Any]) -> contract.SearchQuery:
    try:
        return contract.SearchQuery.from_args(args)
    except contract.ParamError as exc:
        raise ConfigError(f"bad argument {exc}") from None


def max_pages_from(value: Any) -> int:
    if value in (None, ""):
        return 0
    try:
        return contract.parse_int("max_pages", value, 1)
    except contract.ParamError as exc:
        raise ConfigError(f"bad argument {exc}") from None


def job_config(args: dict[str, Any], settings: BaseSettings | None = None, *, need_seeds: bool = True) -> JobConfig:
    unknown = sorted(set(args) - set(JOB_ARGS) - set(SCRAPYD_ARGS))
    if unknown:
        raise ConfigError(f"unknown argument {unknown[0]!r} (arguments are {', '.join(JOB_ARGS)})")
    if need_seeds and not (args.get("urls_file") or args.get("urls")):
        raise ConfigError(NO_SEEDS)
    if args.get("urls_file") and args.get("urls"):
        raise ConfigError("give either -a urls_file or -a urls, not both")
    query, max_pages, refresh = query_from_args(args), max_pages_from(args.get("max_pages")), args.get("refresh")
    try:
        refresh = refresh not in (None, "") and contract.parse_bool(refresh)
    except ValueError:
        raise ConfigError(f"bad argument refresh: {refresh!r} is not one of true/false/1/0/yes/no") from None
    return JobConfig(
        query=query,
        max_pages=max_pages,
        urls_file=args.get("urls_file") or None,
        urls=args.get("urls") or None,
        redactor=Redactor(auth.secrets_of(settings) if settings is not None else ()),
        refresh=refresh,
        spreadsheet=sheets.sheet_list_from(args),
        currency=currency_from(args),
        choice=sourcing.choice_from(args),
    )


def check_seed_list(config: JobConfig) -> None:
    """ConfigError when the list cannot be opened or holds no searchable line, read up to its first
    searchable line only (the rest is read as the crawl goes)."""
    if not (config.urls_file or config.urls):
        raise ConfigError(NO_SEEDS)
    bad: list[seeds.BadLine] = []
    try:
        for entry in config.read_seeds().entries:
            if isinstance(entry, seeds.Seed):
                break
            bad.append(entry)
        else:
            unit = config.seed_unit
            detail = f" ({len(bad)} bad {unit}s; {unit} {bad[0].line}: {bad[0].reason})" if bad else ""
            raise ConfigError(f"{config.seed_source} has no searchable image URL{detail}")
        if config.spreadsheet is not None:
            config.spreadsheet.check(config.seed_source)
    except seeds.SeedError as exc:
        raise ConfigError(str(exc)) from None


def check_setting_names(settings: BaseSettings, custom: Mapping[str, Any] | None = None) -> None:
    """Every `TMAPI_*` name given (-s, settings.py, custom_settings, the environment) is one the registry
    knows: a typo is one line, not a cap silently off."""
    registry.import_addons(settings)  # an add-on declares its own settings
    registry.check_names(settings)
    registry.check_names(custom or {})
    registry.check_environment(os.environ)


def check_settings(settings: BaseSettings) -> None:
    """Settings that must be right before the first paid call: ours by the registry, then the few
    Scrapy settings we read and the cross-field rules."""
    registry.check(settings)
    if not auth.secrets_of(settings):
        raise ConfigError(
            "no API token: set TMAPI_API_TOKEN in the environment (or -s TMAPI_API_TOKEN=...),"
            " or run against the bundled sandbox with -s TMAPI_SANDBOX=true"
        )
    try:
        timeout = settings.getfloat("DOWNLOAD_TIMEOUT")
    except ValueError:
        raise ConfigError(f"DOWNLOAD_TIMEOUT must be a number, got {settings.get('DOWNLOAD_TIMEOUT')!r}") from None
    if timeout < 0:
        raise ConfigError(f"DOWNLOAD_TIMEOUT must not be negative, got {timeout}")
    if timeout == 0:
        raise ConfigError("DOWNLOAD_TIMEOUT must be above 0 (seconds per call), got 0")
    # Scrapy reads these with a bare int()/logging call: a typo would be a traceback wall.
    for name, low in (
        ("RETRY_TIMES", 0),
        ("CONCURRENT_REQUESTS", 1),
        ("CONCURRENT_REQUESTS_PER_DOMAIN", 1),
        ("DOWNLOAD_MAXSIZE", 0),  # 0: no limit
        ("DOWNLOAD_WARNSIZE", 0),
    ):
        try:
            number = settings.getint(name)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {settings.get(name)!r}") from None
        if number < low:
            raise ConfigError(f"{name} must be {low} or more, got {number}")
    base, cap = registry.read(settings, "TMAPI_BACKOFF_BASE"), registry.read(settings, "TMAPI_BACKOFF_MAX")
    if base > 0 and cap < base:
        raise ConfigError(f"TMAPI_BACKOFF_MAX ({cap}) must not be below TMAPI_BACKOFF_BASE ({base})")
    level = settings.get("LOG_LEVEL")
    if isinstance(level, str) and not isinstance(logging.getLevelName(level), int):
        raise ConfigError(f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {level!r}")
    # Imported here: every command imports this module at start.
    from tmapi_spiders.jobs import cache

    cache.check(settings)  # a writable answer store, JOBDIR that can resume (docs/running-jobs.md)
