"""A job's configuration from spider arguments and settings, checked before any call.

`scrapy crawl`, `scrapy seed` and the spider itself all go through `job_config`, so
a bad argument gives the same one-line error everywhere and costs no paid call.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from scrapy.settings import BaseSettings

from tmapi_spiders import auth, contract, registry, seeds, sourcing
from tmapi_spiders.redact import Redactor
from tmapi_spiders.registry import ConfigError

__all__ = ["ConfigError", "JobConfig", "check_seed_list", "check_setting_names", "check_settings", "job_config"]

QUERY_ARGS = ("language", "sort", "page_size", *contract.FILTERS)
SEED_ARGS = ("urls_file", "urls")
# refresh=true: pay for every call again instead of reusing the answer store (cache.py).
# best, best_by, max_price, max_moq, badges: which offers the sourcing workbook and the report
# call the best (sourcing.Choice); they change no call.
JOB_ARGS = (*SEED_ARGS, "max_pages", *QUERY_ARGS, "refresh", *sourcing.CHOICE_ARGS)
# scrapyd adds these spider arguments to every job it runs (`-a _job=<id>`, `-a _version=...`).
SCRAPYD_ARGS = ("_job", "_version")
NO_SEEDS = "no seeds: give -a urls_file=PATH (one image URL per line) or -a urls=URL1,URL2"


@dataclass(frozen=True)
class JobConfig:
    query: contract.SearchQuery
    max_pages: int  # 0: no limit beyond total_count
    urls_file: str | None
    urls: str | None
    # The API token: seed lines carrying it are bad lines (seeds.check_image_url).
    redactor: Redactor = field(default_factory=lambda: Redactor(()), compare=False, repr=False)

    def with_token(self, settings: BaseSettings) -> JobConfig:
        """The same job, checking its seeds against the settings' API token (the spider
        builds its JobConfig from its arguments, before it has settings)."""
        return replace(self, redactor=token_redactor(settings))

    refresh: bool = False  # -a refresh=true: stored answers are not reused this run
    choice: sourcing.Choice = field(default_factory=sourcing.Choice)  # the best offers' choice

    def seed_lines(self) -> Iterator[bytes]:
        if self.urls_file:
            return seeds.open_lines(self.urls_file)
        return iter(seeds.inline_lines(self.urls or ""))

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


def token_redactor(settings: BaseSettings) -> Redactor:
    """The Redactor of this crawl's API token (empty without one, or with the sandbox's public one)."""
    return Redactor(auth.secrets_of(settings))


def refresh_from(value: Any) -> bool:
    if value in (None, ""):
        return False
    try:
        return contract.parse_bool(value)
    except ValueError:
        raise ConfigError(f"bad argument refresh: {value!r} is not one of true/false/1/0/yes/no") from None


def job_config(args: dict[str, Any], *, need_seeds: bool = True, redactor: Redactor | None = None) -> JobConfig:
    unknown = sorted(set(args) - set(JOB_ARGS) - set(SCRAPYD_ARGS))
    if unknown:
        raise ConfigError(f"unknown argument {unknown[0]!r} (arguments are {', '.join(JOB_ARGS)})")
    if need_seeds and not (args.get("urls_file") or args.get("urls")):
        raise ConfigError(NO_SEEDS)
    if args.get("urls_file") and args.get("urls"):
        raise ConfigError("give either -a urls_file or -a urls, not both")
    return JobConfig(
        query=query_from_args(args),
        max_pages=max_pages_from(args.get("max_pages")),
        urls_file=args.get("urls_file") or None,
        urls=args.get("urls") or None,
        redactor=redactor or Redactor(()),
        refresh=refresh_from(args.get("refresh")),
        choice=choice_of(args),
    )


def choice_of(args: dict[str, Any]) -> sourcing.Choice:
    try:
        return sourcing.choice_from(args)
    except sourcing.ChoiceError as exc:
        raise ConfigError(str(exc)) from None


def check_seed_list(config: JobConfig) -> tuple[int, int]:
    """Scan the whole list once; raises ConfigError when it is unreadable or empty."""
    try:
        return seeds.preflight(config.seed_lines(), config.seed_source, config.redactor)
    except seeds.SeedError as exc:
        raise ConfigError(str(exc)) from None


def check_setting_names(settings: BaseSettings, custom: Mapping[str, Any] | None = None) -> None:
    """Every `TMAPI_*` name given (-s, settings.py, a spider's custom_settings, the environment)
    is one the registry knows: before anything is paid, a typo is one line, not a cap that is
    silently off."""
    registry.check_names(settings)
    registry.check_names(custom or {})
    registry.check_environment(os.environ)


def check_settings(settings: BaseSettings) -> None:
    """Settings that must be right before the first paid call: ours by the registry (type,
    bounds, choices), then the few Scrapy settings we read and the cross-field rules."""
    registry.check(settings)
    from tmapi_spiders.addons import token_supplied

    if not settings.get("TMAPI_API_TOKEN") and not token_supplied(settings):
        raise ConfigError(
            "no API token: set TMAPI_API_TOKEN in the environment (or -s TMAPI_API_TOKEN=...),"
            " or run against the bundled sandbox with -s TMAPI_SANDBOX=true"
        )
    for name in ("DOWNLOAD_TIMEOUT",):
        try:
            value = settings.getfloat(name)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {settings.get(name)!r}") from None
        if value < 0:
            raise ConfigError(f"{name} must not be negative, got {value}")
        if name == "DOWNLOAD_TIMEOUT" and value == 0:
            raise ConfigError("DOWNLOAD_TIMEOUT must be above 0 (seconds per call), got 0")
    # Scrapy reads these with a bare int()/logging call: a typo would be a traceback wall.
    for name, low in (("RETRY_TIMES", 0), ("CONCURRENT_REQUESTS", 1), ("CONCURRENT_REQUESTS_PER_DOMAIN", 1)):
        try:
            number = settings.getint(name)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {settings.get(name)!r}") from None
        if number < low:
            raise ConfigError(f"{name} must be {low} or more, got {number}")
    base, cap = settings.getfloat("TMAPI_BACKOFF_BASE"), settings.getfloat("TMAPI_BACKOFF_MAX")
    if base > 0 and cap < base:
        raise ConfigError(f"TMAPI_BACKOFF_MAX ({cap}) must not be below TMAPI_BACKOFF_BASE ({base})")
    level = settings.get("LOG_LEVEL")
    if isinstance(level, str) and not isinstance(logging.getLevelName(level), int):
        raise ConfigError(f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {level!r}")
    check_operator_settings(settings)


def check_operator_settings(settings: BaseSettings) -> None:
    """The cap, cache, progress and summary settings (docs/running-jobs.md)."""
    from tmapi_spiders import cache, limits, spending
    from tmapi_spiders.extensions import progress

    try:
        limits.check(settings)
        spending.max_calls(settings)
        cache.check(settings)
        progress.check(settings)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
