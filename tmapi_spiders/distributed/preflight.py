"""Checks `scrapy crawl` and `scrapy seed` run before a worker starts: one line, no paid call."""

from __future__ import annotations

from typing import Any

from scrapy.settings import BaseSettings

from tmapi_spiders.crawl.config import ConfigError, check_seed_list, job_config
from tmapi_spiders.crawl.config import check_settings as check_job_settings
from tmapi_spiders.distributed import connection
from tmapi_spiders.distributed.keys import JobKeys, legacy_keys, legacy_message
from tmapi_spiders.distributed.scheduler import refused_setting
from tmapi_spiders.jobs import outcome


def check(settings: BaseSettings, spider_args: dict[str, Any], spider_name: str) -> tuple[int, str] | None:
    """(exit code, message) when the worker must not start, else None."""
    try:
        check_job_settings(settings)
        config = job_config(spider_args, settings, need_seeds=False)
        if config.urls_file or config.urls:
            check_seed_list(config)
    except ConfigError as exc:
        return outcome.BAD_INPUT, str(exc)
    if refused := refused_setting(settings):  # a scrapy-redis setting the scheduler would ignore
        return outcome.BAD_INPUT, refused
    return check_redis(settings, spider_name)


def check_redis(settings: BaseSettings, spider_name: str) -> tuple[int, str] | None:
    """(exit code, message) when the job's Redis cannot serve it: a Redis or key setting that cannot
    work (or leaves the job's hash slot), Redis unreachable, or the job's keys only under the old names."""
    try:
        connection.plan(settings)
        keys = JobKeys.from_settings(settings, spider_name)
        keys.check_one_slot()
    except ValueError as exc:  # connection.SettingError too
        return outcome.BAD_INPUT, str(exc)
    if problem := connection.check_reachable(settings):
        return outcome.REDIS_DOWN, problem
    try:
        server = connection.client(settings)
        found = legacy_keys(server, keys)
        server.close()
    except connection.ERRORS as exc:
        return outcome.REDIS_DOWN, connection.lost_line(settings, exc)
    return (outcome.BAD_INPUT, legacy_message(keys, found)) if found else None
