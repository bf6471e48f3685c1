"""How the token reaches TMAPI (TMAPI_AUTH): the `apikey` header, the `apiToken` query parameter, or
`auto`: the header first, the query parameter once if the gateway refuses it, then whichever worked."""

from __future__ import annotations

import asyncio
import logging

from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.settings import BaseSettings
from w3lib.url import add_or_replace_parameter

from tmapi_spiders import registry
from tmapi_spiders.api import contract
from tmapi_spiders.api.requests import endpoint_of

logger = logging.getLogger(__name__)

HEADER, QUERY, AUTO = "header", "query", "auto"


class ApiRefused(IgnoreRequest):
    """TMAPI refused the token or the balance: the request and the crawl stop."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def token_of(settings: BaseSettings) -> str:
    """The token this crawl sends."""
    return registry.read(settings, "TMAPI_API_TOKEN")


def secrets_of(settings: BaseSettings) -> list[str]:
    """What must never be shown: the token."""
    token = token_of(settings)
    return [token] if token else []


class Signer:
    """How each API call carries the token; in `auto` mode, learned once by the call holding `probing`."""

    def __init__(self, token: str, mode: str, base_url: str) -> None:
        self.token = token
        self.way: str | None = None if mode == AUTO else mode
        self.base_url = base_url.rstrip("/")
        self.probing = asyncio.Lock()  # the others wait while one call learns the way
        self.refused = False  # the gateway took the token neither way: no call goes out again

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Signer:
        read = registry.read
        return cls(token_of(settings), read(settings, "TMAPI_AUTH"), read(settings, "TMAPI_BASE_URL"))

    def applies(self, request: Request) -> bool:
        """Our API calls, and (for `scrapy shell`/`fetch`/`view`) any URL under the API's base."""
        if not self.token:
            return False
        if endpoint_of(request):
            return True
        return bool(self.base_url) and request.url.startswith(self.base_url + "/1688/")

    def adopt(self, way: str) -> None:
        """A way learned elsewhere (another worker of the job, through Redis)."""
        if way in (HEADER, QUERY) and self.way is None:
            self.way = way
            logger.info("TMAPI_AUTH=auto: the job sends the token as the %s (learned by another worker)", _named(way))

    def learned(self, way: str) -> bool:
        """The way this worker's probe found; False when another worker's came first."""
        if self.way is not None:
            return False
        self.way = way
        logger.info("TMAPI_AUTH=auto: the gateway takes the token as the %s; kept for this job", _named(way))
        return True

    def sign(self, request: Request, way: str) -> Request:
        """A copy of `request` carrying the token (the original never does)."""
        if way == QUERY:
            return request.replace(url=add_or_replace_parameter(request.url, contract.TOKEN_QUERY_PARAM, self.token))
        signed = request.replace()
        signed.headers[contract.TOKEN_HEADER] = self.token
        return signed


def _named(way: str) -> str:
    return f"`{contract.TOKEN_HEADER}` header" if way == HEADER else f"`{contract.TOKEN_QUERY_PARAM}` query parameter"


def refused(status: int) -> bool:
    """The gateway refused the key (it answers 401 for no key and for an unknown one)."""
    return status in (contract.UNAUTHORIZED, 403)
