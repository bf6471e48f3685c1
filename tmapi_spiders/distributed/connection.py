"""Redis clients for workers and commands: short timeouts, passwords never shown.

One Redis, a Redis Cluster or a Sentinel-managed master, plain or TLS, all through
redis-py's own clients (RedisCluster follows MOVED and failovers, Sentinel finds the
current master): this module only turns the settings into their arguments.

- `REDIS_URL=redis://host:6379/0` (or `rediss://` for TLS): one Redis.
- `REDIS_URL=redis+cluster://host:7000` (or `-s REDIS_CLUSTER=true` with a plain URL): a
  cluster, any node as the entry point.
- `REDIS_URL=redis+sentinel://sentinel1:26379,sentinel2:26379/mymaster/0`, or
  `REDIS_SENTINELS=sentinel1:26379,sentinel2:26379` with `REDIS_SENTINEL_MASTER=mymaster`
  (and REDIS_URL, if given, for the password, db and `rediss`): the master the sentinels name.
- TLS (`rediss`): REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE + REDIS_TLS_KEY_FILE (client
  certificate), REDIS_TLS_VERIFY (on by default: the server's certificate and host name
  are checked).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import redis
from redis.connection import parse_url
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
# A server at its `maxmemory` with `noeviction` refuses every write that could grow it: not
# lost, but no work can be queued or leased until someone raises the limit.
OUT_OF_MEMORY = redis.exceptions.OutOfMemoryError
# Replies of a server that refused the password (redis-py raises most as AuthenticationError).
AUTH_ERRORS = ("WRONGPASS", "NOAUTH", "NOPERM", "ERR AUTH", "INVALID PASSWORD", "INVALID USERNAME")


_USERINFO_PASSWORD = re.compile(r"^([a-z+]+://[^:/@]*:)[^@/]*@", re.IGNORECASE)
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
SENTINEL_SCHEMES = {"redis+sentinel": "redis", "rediss+sentinel": "rediss"}
SCHEMES = ("redis", "rediss", "unix", *CLUSTER_SCHEMES, *SENTINEL_SCHEMES)
TLS_FILES = {
    "REDIS_TLS_CA_FILE": "ssl_ca_certs",
    "REDIS_TLS_CERT_FILE": "ssl_certfile",
    "REDIS_TLS_KEY_FILE": "ssl_keyfile",
}


class SettingError(ValueError):
    """A Redis setting that cannot work: the message is one line naming the setting."""


@dataclass
class Plan:
    """How to reach the job's Redis: `kind` is "single", "cluster" or "sentinel"."""

    kind: str
    url: str  # for "single" and "cluster" (a redis:// or rediss:// URL); "" for sentinel
    params: dict[str, Any]  # connection arguments (timeouts, TLS, password, db)
    sentinels: list[tuple[str, int]] = field(default_factory=list)
    master: str = ""
    sentinel_params: dict[str, Any] = field(default_factory=dict)
    redis_cls: Any = None  # REDIS_PARAMS' redis_cls (single only)


def _hosts(text: str, setting: str) -> list[tuple[str, int]]:
    hosts = []
    for part in (p.strip() for p in text.split(",")):
        host, _, port = part.rpartition(":")
        if not host or not port.isdigit():
            raise SettingError(f"{setting} must be host:port[,host:port...], got {part!r}")
        hosts.append((host.strip("[]"), int(port)))
    if not hosts:
        raise SettingError(f"{setting} names no sentinel")
    return hosts


def plan(settings: BaseSettings) -> Plan:
    """The settings as redis-py arguments; SettingError (one line naming the setting) when
    they cannot work: an unknown scheme, TLS files without `rediss`, a missing file."""
    params: dict[str, Any] = {**DEFAULT_PARAMS, **settings.getdict("REDIS_PARAMS")}
    redis_cls = params.pop("redis_cls", None)
    if isinstance(redis_cls, str):
        redis_cls = load_object(redis_cls)
    for source, dest in SETTINGS_PARAMS_MAP.items():
        if settings.get(source) and dest != "url":
            params[dest] = settings.get(source)
    url = str(settings.get("REDIS_URL") or "")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if url and scheme not in SCHEMES:
        raise SettingError(
            f"REDIS_URL must start with one of {', '.join(s + '://' for s in SCHEMES)}, got {describe(url)!r}"
        )
    sentinels_setting = str(settings.get("REDIS_SENTINELS") or "")
    master = str(settings.get("REDIS_SENTINEL_MASTER") or "")
    cluster = settings.getbool("REDIS_CLUSTER") or scheme in CLUSTER_SCHEMES
    tls = scheme in ("rediss", "rediss+cluster", "rediss+sentinel")
    sentinels: list[tuple[str, int]] = []
    if scheme in SENTINEL_SCHEMES:
        rest = url.split("://", 1)[1]
        userinfo, _, rest = rest.rpartition("@")
        netloc, _, path = rest.partition("/")
        sentinels = _hosts(netloc, "REDIS_URL")
        parts = [p for p in path.split("?", 1)[0].split("/") if p]
        if parts:
            master = master or unquote(parts[0])
        if len(parts) > 1:
            if not parts[1].isdigit():
                raise SettingError(f"REDIS_URL: the db after the master name must be a number, got {parts[1]!r}")
            params["db"] = int(parts[1])
        if userinfo:
            user, _, password = userinfo.partition(":")
            params["username"] = unquote(user) or None
            params["password"] = unquote(password) or None
    elif sentinels_setting:
        sentinels = _hosts(sentinels_setting, "REDIS_SENTINELS")
        if url:  # password, db and TLS of the master; its host is the sentinels' to say
            parsed = parse_url(url)
            for name in ("username", "password", "db"):
                if parsed.get(name) is not None:
                    params[name] = parsed[name]
    if sentinels:
        if cluster:
            raise SettingError("REDIS_CLUSTER cannot be used with Sentinel: a cluster fails over by itself")
        if not master:
            raise SettingError(
                "REDIS_SENTINEL_MASTER is not set: name the master the sentinels watch"
                " (or give it in REDIS_URL=redis+sentinel://host:26379/<master>/0)"
            )
    elif not url:
        raise SettingError("no REDIS_URL: give -s REDIS_URL=redis://host:6379/0 (or set it in the environment)")
    for setting, arg in TLS_FILES.items():
        path = str(settings.get(setting) or "")
        if not path:
            continue
        if not tls:
            raise SettingError(f"{setting} is set but REDIS_URL is not rediss:// (TLS): use rediss://")
        if not os.path.isfile(path):
            raise SettingError(f"{setting}: no such file {path!r}")
        params[arg] = path
    if bool(settings.get("REDIS_TLS_CERT_FILE")) != bool(settings.get("REDIS_TLS_KEY_FILE")):
        raise SettingError(
            "REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together (the client certificate and its key)"
        )
    if tls:
        try:
            verify = settings.getbool("REDIS_TLS_VERIFY", True)
        except ValueError:
            raise SettingError(
                f"REDIS_TLS_VERIFY must be true or false, got {settings.get('REDIS_TLS_VERIFY')!r}"
            ) from None
        params.setdefault("ssl_cert_reqs", "required" if verify else "none")
        params.setdefault("ssl_check_hostname", verify)
    if sentinels:
        sentinel_params = {
            k: v for k, v in params.items() if k in ("socket_timeout", "socket_connect_timeout", "decode_responses")
        }
        if settings.get("REDIS_SENTINEL_PASSWORD"):
            sentinel_params["password"] = str(settings.get("REDIS_SENTINEL_PASSWORD"))
        if tls:
            params["ssl"] = True
            sentinel_params.update({k: v for k, v in params.items() if k.startswith("ssl")})
        return Plan("sentinel", "", params, sentinels, master, sentinel_params)
    base = CLUSTER_SCHEMES.get(scheme, scheme) + url[len(scheme) :]
    return Plan("cluster" if cluster else "single", base, params, redis_cls=redis_cls)


def check_settings(settings: BaseSettings) -> str | None:
    """None, or the one-line error naming the Redis setting that cannot work."""
    try:
        plan(settings)
    except SettingError as exc:
        return str(exc)
    return None


def client(settings: BaseSettings) -> Any:
    """A redis-py client for the settings: redis.Redis, RedisCluster, or Sentinel's master
    client; scrapy-redis's settings (REDIS_URL, REDIS_PARAMS, REDIS_HOST/PORT/DB), our timeouts."""
    how = plan(settings)
    if how.kind == "sentinel":
        from redis.sentinel import Sentinel

        params = {k: v for k, v in how.params.items() if k not in ("host", "port")}
        return Sentinel(how.sentinels, sentinel_kwargs=how.sentinel_params, **params).master_for(how.master)
    if how.kind == "cluster":
        from redis.cluster import RedisCluster

        params = {k: v for k, v in how.params.items() if k not in ("db",)}
        return RedisCluster.from_url(how.url, **params)
    params = dict(how.params)
    if how.redis_cls is not None:
        params["redis_cls"] = how.redis_cls
    return get_redis(url=how.url, **params)


def async_client(settings: BaseSettings, min_socket_timeout: float = 0) -> Any:
    """The redis.asyncio client of the same Redis (the job-wide limiter's, limits/);
    `min_socket_timeout` for a client that waits in blocking commands."""
    import redis.asyncio

    how = plan(settings)
    params = {k: v for k, v in how.params.items() if k != "health_check_interval"}
    params["socket_timeout"] = max(float(params.get("socket_timeout") or 0), min_socket_timeout)
    if how.kind == "sentinel":
        from redis.asyncio.sentinel import Sentinel

        params = {k: v for k, v in params.items() if k not in ("host", "port")}
        return Sentinel(how.sentinels, sentinel_kwargs=how.sentinel_params, **params).master_for(how.master)
    if how.kind == "cluster":
        params = {k: v for k, v in params.items() if k not in ("db", "retry_on_timeout")}
        return redis.asyncio.RedisCluster.from_url(how.url, **params)
    return redis.asyncio.Redis.from_url(how.url, **params)


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
    except ValueError:  # e.g. a Sentinel URL's host list: blank the userinfo's password anyway
        masked = _USERINFO_PASSWORD.sub(r"\1***@", url, count=1)
        return masked if "://" in masked else "(unparsable REDIS_URL)"


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
    url = str(settings.get("REDIS_URL") or settings.get("REDIS_SENTINELS") or "")
    try:
        server = client(settings)
        server.ping()
        server.close()
    except SettingError as exc:
        return str(exc)
    except (redis.RedisError, ValueError, OSError) as exc:
        if is_auth_error(exc):  # the server answered: the password is wrong or missing
            return f"authentication failed at Redis {describe(url)}: {reason(exc, url)}"
        return f"cannot reach Redis at {describe(url)}: {reason(exc, url)}"
    return None
