"""Checks `scrapy crawl` and `scrapy seed` run before a worker starts: one line, no paid call."""

from __future__ import annotations

from typing import Any

from scrapy.settings import BaseSettings

from tmapi_spiders.crawl.config import ConfigError, JobConfig, check_seed_list, job_config, token_redactor
from tmapi_spiders.crawl.config import check_settings as check_job_settings
from tmapi_spiders.distributed import connection
from tmapi_spiders.distributed.keys import JobKeys, legacy_keys, legacy_message
from tmapi_spiders.jobs import outcome


def check(
    settings: BaseSettings, spider_args: dict[str, Any], spider_name: str = "image_search"
) -> tuple[int, str] | None:
    """(exit code, message) when the worker must not start, else None."""
    try:
        check_job_settings(settings)
        config = job_config(spider_args, need_seeds=False, redactor=token_redactor(settings))
        if config.urls_file or config.urls:
            check_seed_list(config)
        check_settings(settings)
        check_keys(settings, spider_name)
    except ConfigError as exc:
        return outcome.BAD_INPUT, str(exc)
    problem = connection.check_reachable(settings)
    if problem:
        return outcome.REDIS_DOWN, problem
    return check_legacy(settings, spider_name)


def check_keys(settings: BaseSettings, spider_name: str) -> None:
    """ConfigError when a Redis setting cannot work (TLS files, sentinels, schemes) or a key
    setting puts a key of the job outside its hash slot (CROSSSLOT on a cluster)."""
    problem = connection.check_settings(settings)
    if problem:
        raise ConfigError(problem)
    try:
        JobKeys.from_settings(settings, spider_name).check_one_slot()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def check_legacy(settings: BaseSettings, spider_name: str) -> tuple[int, str] | None:
    """(2, the migration line) when the job has keys only under the names used before the
    hash tags: a worker would find it empty and stop, its seeds never searched."""
    keys = JobKeys.from_settings(settings, spider_name)
    try:
        server = connection.client(settings)
        found = legacy_keys(server, keys)
        server.close()
    except connection.ERRORS as exc:
        url = str(settings.get("REDIS_URL") or "")
        return outcome.REDIS_DOWN, f"lost Redis at {connection.describe(url)}: {connection.reason(exc, url)}"
    return (outcome.BAD_INPUT, legacy_message(keys, found)) if found else None


def check_settings(settings: BaseSettings) -> None:
    from tmapi_spiders.distributed.scheduler import refused_setting

    refused = refused_setting(settings)
    if refused:
        raise ConfigError(refused)
    for name in (
        "TMAPI_REDIS_LEASE",
        "TMAPI_REDIS_ACK_INTERVAL",
        "TMAPI_REDIS_RETRY_DELAY",
        "TMAPI_REDIS_DUPEFILTER_TTL",
        "TMAPI_REDIS_ACK_MAX_DELAY",
        "MAX_IDLE_TIME_BEFORE_CLOSE",
    ):
        try:
            value = settings.getfloat(name)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {settings.get(name)!r}") from None
        if value < 0 or (value == 0 and name in ("TMAPI_REDIS_LEASE", "TMAPI_REDIS_ACK_INTERVAL")):
            raise ConfigError(f"{name} must be more than 0, got {settings.get(name)!r}")
    try:
        settings.getint("TMAPI_REDIS_RETRY_TIMES")
    except ValueError:
        raise ConfigError(
            f"TMAPI_REDIS_RETRY_TIMES must be an integer, got {settings.get('TMAPI_REDIS_RETRY_TIMES')!r}"
        ) from None


def seed_config(spider_args: dict[str, Any], settings: BaseSettings) -> JobConfig:
    """The checked config of `scrapy seed`; lines carrying the settings' token are bad lines."""
    config = job_config(spider_args, redactor=token_redactor(settings))
    check_seed_list(config)
    return config
