"""This project's `scrapy` commands."""

from __future__ import annotations

import sys
from typing import NoReturn

from tmapi_spiders.jobs import outcome


def fail(message: str, code: int = outcome.BAD_INPUT) -> NoReturn:
    """One `error:` line on stderr, then exit with `code`."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


class Tool:
    """A command that runs no crawl (in a project, no crawler process, no log), as
    `class Command(Tool, ScrapyCommand)`: Scrapy would list a ScrapyCommand here as a command."""

    requires_project = True
    requires_crawler_process = False
    default_settings = {"LOG_ENABLED": False}
    usage = ""
    description = ""

    def syntax(self) -> str:
        return self.usage

    def short_desc(self) -> str:
        return self.description
