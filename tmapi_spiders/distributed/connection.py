"""Redis clients for workers and commands: short timeouts, passwords never shown."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from scrapy.settings import BaseSettings
from scrapy.utils.misc import load_object
from scrapy_redis.connection import SETTINGS_PARAMS_MAP, get_redis

# A worker's Redis calls run on the reactor thread (scheduler) or in threads (heartbeats):
# a lost server must cost seconds, not scrapy-redis's 30 s per call.
DEFAULT_PARAMS: dict[str, Any] = {
    "socket_timeout": 5,
    "socket_connect_timeout": 5,
    "retry_on_timeout": False,
    "health_check_interval": 30,
    "decode_responses": True,
}

ERRORS = (redis.ConnectionError, redis.TimeoutError)
# Replies of a server that refused the password (redis-py raises most as AuthenticationError).
AUTH_ERRORS = ("WRONGPASS", "NOAUTH", "NOPERM", "ERR AUTH", "INVALID PASSWORD", "INVALID USERNAME")


def client(settings: BaseSettings) -> redis.Redis:
    """scrapy-redis's settings (REDIS_URL, REDIS_PARAMS, REDIS_HOST/PORT/DB), our timeouts."""
    params: dict[str, Any] = {**DEFAULT_PARAMS, **settings.getdict("REDIS_PARAMS")}
    for source, dest in SETTINGS_PARAMS_MAP.items():
        if settings.get(source):
            params[dest] = settings.get(source)
    if isinstance(params.get("redis_cls"), str):
        params["redis_cls"] = load_object(params["redis_cls"])
    return get_redis(**params)


def describe(url: str) -> str:
    """The URL as it may be printed: any password replaced by ***."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))
    except ValueError:
        return "(unparsable REDIS_URL)"


def reason(exc: BaseException, url: str) -> str:
    """An error message safe to print: the URL's password is never in it."""
    text = str(exc) or type(exc).__name__
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        text = text.replace(password, "***")
    return text.splitlines()[0] if text else type(exc).__name__


def is_auth_error(exc: BaseException) -> bool:
    """Redis refused the password (WRONGPASS, NOAUTH...), as opposed to not answering at all:
    redis-py raises most as AuthenticationError, a ConnectionError too, so check it first."""
    return isinstance(exc, redis.AuthenticationError) or (
        isinstance(exc, redis.ResponseError) and str(exc).upper().startswith(AUTH_ERRORS)
    )


def check_reachable(settings: BaseSettings) -> str | None:
    """None when Redis answers a PING, else the one-line error `scrapy crawl` prints."""
    url = str(settings.get("REDIS_URL") or "")
    try:
        server = client(settings)
        server.ping()
        server.close()
    except (redis.RedisError, ValueError, OSError) as exc:
        if is_auth_error(exc):  # the server answered: the password is wrong or missing
            return f"authentication failed at Redis {describe(url)}: {reason(exc, url)}"
        return f"cannot reach Redis at {describe(url)}: {reason(exc, url)}"
    return None
