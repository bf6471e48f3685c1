"""TMAPI_MAX_CONCURRENCY and TMAPI_MAX_QPS: the plan's limits, held across the whole job.

`TmapiLimitMiddleware` sits after the cache (900), the envelope (910) and the spending cap
(930), before the token goes on: only calls that leave for the API take a slot. In one
process the slots are a counter (local.py); with REDIS_URL a lease-based semaphore in Redis
(shared.py), so a kill -9'd worker's slots expire by themselves. The rate is a shared
schedule (GCRA) aimed just under the plan. A 429 or a 503 "concurrency limit exceeded" cuts
the limits, which creep back one success at a time (policy.py); a 429 with no TMAPI_MAX_QPS
sets a rate from the calls the gateway let through.
"""

from __future__ import annotations

from tmapi_spiders.limits.local import LocalBackend
from tmapi_spiders.limits.middleware import TmapiLimitMiddleware
from tmapi_spiders.limits.policy import (
    AIMD_ARGS,
    CREEP,
    CUT,
    MARGIN_DECAY,
    MARGIN_STEP,
    PROBE,
    QPS_FLOOR,
    QPS_MARGIN,
    QPS_MARGIN_MAX,
    QPS_STEP,
    RATE_FLOOR,
    Aimd,
    LimitError,
    Margin,
    check,
    configure,
    read_limits,
)
from tmapi_spiders.limits.shared import RELEASE, RedisBackend

__all__ = [
    "AIMD_ARGS",
    "CREEP",
    "CUT",
    "MARGIN_DECAY",
    "MARGIN_STEP",
    "PROBE",
    "QPS_FLOOR",
    "QPS_MARGIN",
    "QPS_MARGIN_MAX",
    "QPS_STEP",
    "RATE_FLOOR",
    "RELEASE",
    "Aimd",
    "LimitError",
    "LocalBackend",
    "Margin",
    "RedisBackend",
    "TmapiLimitMiddleware",
    "check",
    "configure",
    "read_limits",
]
