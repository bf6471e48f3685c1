"""TMAPI_MAX_CONCURRENCY and TMAPI_MAX_QPS: the plan's limits, held across the whole job.

`TmapiLimitMiddleware` sits after HttpCacheMiddleware (900), the envelope (910) and the
spending cap (930), before the download handler puts the token on: only calls that really leave for
the API take a slot, and cached answers or refused requests take none. Its
`process_request` awaits a slot (and, with a rate limit, the request's turn); the slot
comes back in `process_response` / `process_exception`.

In one process the slots are a counter on the reactor thread. With REDIS_URL they are a
job-wide, lease-based semaphore in Redis: a zset `{job}:limit:slots` of holders scored
by lease expiry (Redis server time), taken and given back by Lua scripts, renewed while
a call runs; a kill -9'd worker's slots expire and come back by themselves. A worker
that finds every slot taken blocks on the job's wake list (one token per released slot)
instead of polling. The rate is a shared schedule (GCRA): each call reserves
the next free start time, aimed 2.5 % under the plan.

A 429 (the gateway's rate limit) cuts the rate the same way; with no TMAPI_MAX_QPS the job
had none, so the limiter is on even without a limit (waiting for nothing) and the first 429
sets a rate from the calls the gateway let through in the second before it.

A 503 "concurrency limit exceeded" means the plan is tighter than the settings say:
the limits are cut (once per window: only a call made under the current limit can cut
it again) and creep back one success at a time, but never past the last level that
failed until PROBE seconds have passed, so the job settles just under the real limit.
"""

from __future__ import annotations

from tmapi_spiders.limits.local import (
    LocalBackend,
)
from tmapi_spiders.limits.middleware import TmapiLimitMiddleware
from tmapi_spiders.limits.policy import (
    AIMD_ARGS,
    CONCURRENCY_SETTING,
    CREEP,
    CUT,
    DEFAULT_LEASE,
    DEFAULT_POLL,
    FOUND_STEP,
    LEASE_SETTING,
    MARGIN_DECAY,
    MARGIN_STEP,
    OVERLOAD_MARK,
    POLL_SETTING,
    PROBE,
    QPS_FLOOR,
    QPS_MARGIN,
    QPS_MARGIN_MAX,
    QPS_SETTING,
    QPS_STEP,
    RATE_FLOOR,
    RATE_LIMIT_MARK,
    RATE_LIMITED,
    REDIS_TRIES,
    Aimd,
    Backend,
    LimitError,
    LimitUnavailable,
    Margin,
    Slot,
    check,
    configure,
    read_limits,
)
from tmapi_spiders.limits.shared import (
    ACQUIRE,
    HANDOFFS,
    LUA_NOW,
    RELEASE,
    RENEW,
    RedisBackend,
    async_client,
    limit_keys,
)

__all__ = [
    "ACQUIRE",
    "AIMD_ARGS",
    "CONCURRENCY_SETTING",
    "CREEP",
    "CUT",
    "DEFAULT_LEASE",
    "DEFAULT_POLL",
    "FOUND_STEP",
    "HANDOFFS",
    "LEASE_SETTING",
    "LUA_NOW",
    "MARGIN_DECAY",
    "MARGIN_STEP",
    "OVERLOAD_MARK",
    "POLL_SETTING",
    "PROBE",
    "QPS_FLOOR",
    "QPS_MARGIN",
    "QPS_MARGIN_MAX",
    "QPS_SETTING",
    "QPS_STEP",
    "RATE_FLOOR",
    "RATE_LIMITED",
    "RATE_LIMIT_MARK",
    "REDIS_TRIES",
    "RELEASE",
    "RENEW",
    "Aimd",
    "Backend",
    "LimitError",
    "LimitUnavailable",
    "LocalBackend",
    "Margin",
    "RedisBackend",
    "Slot",
    "TmapiLimitMiddleware",
    "async_client",
    "check",
    "configure",
    "limit_keys",
    "read_limits",
]
