"""A local TMAPI: the image search and conversion endpoints over real HTTP, deterministic
synthetic data, injectable faults and limits, and call accounting (docs/sandbox.md).

The server needs the `sandbox` extra (aiohttp): its names are imported on first use, so
the add-on (addon.py), which every crawl loads, loads without it."""

from importlib import import_module
from typing import Any

from tmapi_spiders.sandbox.config import DEFAULT_TOKEN, SandboxConfig
from tmapi_spiders.sandbox.faults import FAULT_KINDS

_SERVER_NAMES = {
    "CALLS_PATH": "server",
    "RESET_PATH": "server",
    "STATS_PATH": "server",
    "RunningSandbox": "server",
    "start_sandbox": "server",
    "SandboxThread": "thread",
}

__all__ = [
    "CALLS_PATH",
    "DEFAULT_TOKEN",
    "FAULT_KINDS",
    "RESET_PATH",
    "STATS_PATH",
    "RunningSandbox",
    "SandboxConfig",
    "SandboxThread",
    "start_sandbox",
]


def __getattr__(name: str) -> Any:
    module = _SERVER_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
