"""TMAPI_MAX_CONCURRENCY and TMAPI_MAX_QPS, held across the whole job (TmapiLimitMiddleware, 940).

Slots are a counter in one process (local.py), a lease-based semaphore in Redis for a shared job
(shared.py); 429s and 503s cut the limits, which creep back with successes (policy.py).
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
    "LocalBackend",
    "Margin",
    "RedisBackend",
    "TmapiLimitMiddleware",
    "check",
    "configure",
    "read_limits",
]
