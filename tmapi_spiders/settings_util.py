"""How the add-on sets the settings a feature needs, below what the user gives."""

from __future__ import annotations

from typing import Any

from scrapy.settings import BaseSettings


def priority_above(settings: BaseSettings, name: str) -> int:
    """One above the setting's priority and the project's: for a dict the add-on completes with the
    user's entries kept in it, whose merged value must replace the one it was made from."""
    return max(settings.getpriority(name) or 0, 20) + 1


def set_unless_given(settings: BaseSettings, name: str, value: Any) -> None:
    """Set NAME at Scrapy's `addon` priority, below the user's (a value given above it is kept)."""
    settings.set(name, value, priority="addon")
