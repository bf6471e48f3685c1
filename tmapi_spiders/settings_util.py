"""How the add-on completes a dict setting the user may also have given."""

from __future__ import annotations

from scrapy.settings import BaseSettings


def priority_above(settings: BaseSettings, name: str) -> int:
    """One above the setting's priority and the project's: for a dict the add-on completes with the
    user's entries kept in it, whose merged value must replace the one it was made from."""
    return max(settings.getpriority(name) or 0, 20) + 1
