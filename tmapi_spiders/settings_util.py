"""Small helpers for the add-ons that complete Scrapy settings for a feature."""

from __future__ import annotations

from typing import Any

from scrapy.settings import SETTINGS_PRIORITIES, BaseSettings

CMDLINE = SETTINGS_PRIORITIES["cmdline"]


def priority_above(settings: BaseSettings, name: str) -> int:
    """One above the setting's priority and the project's: an add-on's own priority
    ("addon", 15) is below the project's settings.py (20), so a value a feature needs
    must be set higher to take effect. Used as is only where the add-on merges the user's
    value into its own (FEEDS, SPIDER_MIDDLEWARES); a plain value goes through
    `set_unless_given`, so `-s` wins."""
    return max(settings.getpriority(name) or 0, 20) + 1


def set_unless_given(settings: BaseSettings, name: str, value: Any) -> bool:
    """Set NAME for a feature unless the user gave it on the command line (`-s` wins
    everywhere); False when the user's value was kept."""
    if (settings.getpriority(name) or 0) >= CMDLINE:
        return False
    settings.set(name, value, priority=priority_above(settings, name))
    return True
