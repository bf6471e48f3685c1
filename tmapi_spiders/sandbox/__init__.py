"""A local TMAPI: the image search and conversion endpoints over real HTTP, deterministic
synthetic data, injectable faults and limits, and call accounting (README.md, "The sandbox")."""

from tmapi_spiders.sandbox.config import DEFAULT_TOKEN, SandboxConfig
from tmapi_spiders.sandbox.faults import FAULT_KINDS
from tmapi_spiders.sandbox.server import CALLS_PATH, RESET_PATH, STATS_PATH, RunningSandbox, start_sandbox
from tmapi_spiders.sandbox.thread import SandboxThread

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
