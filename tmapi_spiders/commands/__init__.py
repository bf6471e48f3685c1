"""This project's `scrapy` commands."""

from __future__ import annotations

import sys
from typing import NoReturn

from tmapi_spiders.jobs import outcome


def fail(message: str, code: int = outcome.BAD_INPUT) -> NoReturn:
    """One `error:` line on stderr, then exit with `code`."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)
