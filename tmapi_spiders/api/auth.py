"""The API token: where a crawl's comes from, what must never be shown, and the refusal that stops a
crawl (download.py signs each call with it)."""

from __future__ import annotations

from scrapy.exceptions import IgnoreRequest
from scrapy.settings import BaseSettings

from tmapi_spiders import registry


class ApiRefused(IgnoreRequest):
    """TMAPI refused the token or the balance: the request and the crawl stop."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def secrets_of(settings: BaseSettings) -> list[str]:
    """What must never be shown: the token this crawl sends."""
    token = registry.read(settings, "TMAPI_API_TOKEN")
    return [token] if token else []
