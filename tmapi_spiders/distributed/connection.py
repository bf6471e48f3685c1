"""Redis clients from settings through redis-py's constructors (single, cluster, sentinel), with
scrapy-redis's REDIS_PARAMS and REDIS_HOST/PORT/DB and REDIS_TLS_*; passwords never shown.
"""

from __future__ import annotations

import os
import re
from functools import partial
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.cluster import RedisCluster
from redis.connection import parse_url
from redis.sentinel import Sentinel
from scrapy.settings import BaseSettings
from scrapy.utils.misc import load_object
from scrapy_redis.connection import SETTINGS_PARAMS_MAP

# Calls run on the reactor thread or in threads: a lost server must cost seconds, not 30 s a call.
DEFAULT_PARAMS: dict[str, Any] = {
    "socket_timeout": 5,
    "socket_connect_timeout": 5,
    "retry_on_timeout": False,
    "health_check_interval": 30,
    "decode_responses": True,
}
ERRORS = (redis.ConnectionError, redis.TimeoutError)
# `maxmemory` with `noeviction`: every write that could grow the data is refused.
OUT_OF_MEMORY = redis.exceptions.OutOfMemoryError
AUTH_ERRORS = ("WRONGPASS", "NOAUTH", "NOPERM", "ERR AUTH", "INVALID PASSWORD", "INVALID USERNAME")
SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster", "redis+sentinel", "rediss+sentinel")
TLS_FILES = {
    "REDIS_TLS_CA_FILE": "ssl_ca_certs",
    "REDIS_TLS_CERT_FILE": "ssl_certfile",
    "REDIS_TLS_KEY_FILE": "ssl_keyfile",
}
# The userinfo's password, also in a Sentinel URL's host list (no netloc urllib can parse).
_PASSWORD = re.compile(r"^([a-z+]+://[^:/@]*:)([^/]*)@", re.IGNORECASE)


class SettingError(ValueError):
    """A Redis setting that cannot work: the message is one line naming the setting."""


def plan(settings: BaseSettings) -> partial[Any]:
    """redis-py's constructor of the settings' client with its arguments (called: the client), or
    SettingError when they cannot work; nothing connects before the call."""
    params: dict[str, Any] = {**DEFAULT_PARAMS, **settings.getdict("REDIS_PARAMS")}
    for name, to in SETTINGS_PARAMS_MAP.items():  # scrapy-redis's REDIS_HOST, REDIS_PORT...
        if to != "url" and settings.get(name):
            params[to] = settings.get(name)
    url = str(settings.get("REDIS_URL") or "")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if url and scheme not in SCHEMES:
        raise SettingError(
            f"REDIS_URL must start with one of {', '.join(s + '://' for s in SCHEMES)}, got {describe(url)!r}"
        )
    base, _, variant = scheme.partition("+")
    if url and variant != "sentinel":
        read_url(url, base, scheme)
    tls, cluster = base == "rediss", variant == "cluster" or settings.getbool("REDIS_CLUSTER")
    hosts, master_url, setting = str(settings.get("REDIS_SENTINELS") or ""), url, "REDIS_SENTINELS"
    master = str(settings.get("REDIS_SENTINEL_MASTER") or "")
    if variant == "sentinel":  # redis+sentinel://[user:password@]host:port[,host:port...]/master[/db]
        userinfo, _, rest = url.split("://", 1)[1].rpartition("@")
        hosts, _, path = rest.split("?", 1)[0].partition("/")
        name, _, db = path.strip("/").partition("/")
        if db and not (db.isascii() and db.isdigit()):  # "²" is a digit to str.isdigit, not to int()
            raise SettingError(f"REDIS_URL: the db after the master name must be a number, got {db!r}")
        master, master_url, setting = master or unquote(name), f"{base}://{userinfo}@sentinel/{db}", "REDIS_URL"
    sentinels = []
    for part in (p.strip() for p in hosts.split(",") if hosts or variant == "sentinel"):
        host, _, port = part.rpartition(":")
        if not host or not (port.isascii() and port.isdigit()):
            raise SettingError(f"{setting} must be host:port[,host:port...], got {part!r}")
        sentinels.append((host.strip("[]"), int(port)))
    if sentinels and cluster:
        raise SettingError("REDIS_CLUSTER cannot be used with Sentinel: a cluster fails over by itself")
    if sentinels and not master:
        raise SettingError(
            "REDIS_SENTINEL_MASTER is not set: name the master the sentinels watch"
            " (or give it in REDIS_URL=redis+sentinel://host:26379/<master>/0)"
        )
    if not sentinels and not url:
        raise SettingError("no REDIS_URL: give -s REDIS_URL=redis://host:6379/0 (or set it in the environment)")
    for setting, arg in TLS_FILES.items():
        path = str(settings.get(setting) or "")
        if path and not tls:
            raise SettingError(f"{setting} is set but REDIS_URL is not rediss:// (TLS): use rediss://")
        if path and not os.path.isfile(path):
            raise SettingError(f"{setting}: no such file {path!r}")
        if path:
            params[arg] = path
    if bool(settings.get("REDIS_TLS_CERT_FILE")) != bool(settings.get("REDIS_TLS_KEY_FILE")):
        raise SettingError(
            "REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together (the client certificate and its key)"
        )
    if tls:
        try:
            verify = settings.getbool("REDIS_TLS_VERIFY", True)
        except ValueError as exc:
            raise SettingError(f"REDIS_TLS_VERIFY must be true or false, got {settings['REDIS_TLS_VERIFY']!r}") from exc
        params.setdefault("ssl_cert_reqs", "required" if verify else "none")
        params.setdefault("ssl_check_hostname", verify)
    redis_cls = load_object(params.pop("redis_cls", None) or redis.Redis)  # a class or its path
    if not sentinels:
        if cluster:
            params.pop("db", None)
            redis_cls = RedisCluster
        return partial(redis_cls.from_url, base + url[len(scheme) :], **params)
    if master_url:  # the master's user, password and db; its host is the sentinels' to say
        given = parse_url(master_url)
        params.update({k: given[k] for k in ("username", "password", "db") if k in given})
    for name in ("host", "port"):
        params.pop(name, None)
    own = {k: v for k, v in params.items() if k in ("socket_timeout", "socket_connect_timeout", "decode_responses")}
    if settings.get("REDIS_SENTINEL_PASSWORD"):
        own["password"] = str(settings.get("REDIS_SENTINEL_PASSWORD"))
    if tls:
        params["ssl"] = True
        own.update({k: v for k, v in params.items() if k.startswith("ssl")})
    return partial(Sentinel(sentinels, sentinel_kwargs=own, **params).master_for, master)


def read_url(url: str, base: str, scheme: str) -> None:
    """SettingError for a REDIS_URL redis-py cannot read (a port that is no number, an unclosed IPv6
    host, a bad ?db=), or whose db path is no number: redis-py would connect to db 0 instead."""
    try:
        given = parse_url(base + url[len(scheme) :])
    except ValueError as exc:
        raise SettingError(f"REDIS_URL cannot be read ({reason(exc, url)}), got {describe(url)!r}") from None
    db = unquote(urlsplit(url).path).replace("/", "")
    if base != "unix" and db and "db" not in given:  # a unix:// path is the socket's
        raise SettingError(f"REDIS_URL: the db after the host must be a number, got {db!r}")


def client(settings: BaseSettings) -> Any:
    """redis.Redis (or REDIS_PARAMS' redis_cls), RedisCluster, or the Sentinel master's client."""
    return plan(settings)()


def describe(url: str) -> str:
    """The URL as it may be printed: any password replaced by ***."""
    return _PASSWORD.sub(r"\1***@", url, count=1)


def reason(exc: BaseException, url: str) -> str:
    """The error's first line, the URL's password replaced by ***."""
    text = str(exc) or type(exc).__name__
    found = _PASSWORD.match(url)
    for password in {found.group(2), unquote(found.group(2))} if found and found.group(2) else ():
        text = text.replace(password, "***")
    return text.splitlines()[0]


def lost_line(settings: BaseSettings, exc: BaseException, what: str = "lost Redis at") -> str:
    """The one line a command prints when Redis is lost mid-way (or `what`), the password replaced by ***."""
    url = str(settings.get("REDIS_URL") or settings.get("REDIS_SENTINELS") or "")
    return f"{what} {describe(url)}: {reason(exc, url)}"


def is_auth_error(exc: BaseException) -> bool:
    """Redis refused the password (redis-py raises most as AuthenticationError, a ConnectionError)."""
    return isinstance(exc, redis.AuthenticationError) or (
        isinstance(exc, redis.ResponseError) and str(exc).upper().startswith(AUTH_ERRORS)
    )


def check_reachable(settings: BaseSettings) -> str | None:
    """None when Redis answers a PING, else the one-line error `scrapy crawl` prints."""
    try:
        server = client(settings)
        server.ping()
        server.close()
    except SettingError as exc:
        return str(exc)
    # redis-py's cluster errors (no node answers, a node not in cluster mode) are no RedisError.
    except (redis.RedisError, redis.exceptions.RedisClusterException, ValueError, OSError) as exc:
        auth = is_auth_error(exc)  # the server answered: the password is wrong or missing
        return lost_line(settings, exc, "authentication failed at Redis" if auth else "cannot reach Redis at")
    return None
