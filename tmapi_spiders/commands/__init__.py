"""This project's `scrapy` commands."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

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

    def process_options(self, args: list[str], opts: Any) -> None:
        """Scrapy hands an option its parser does not know on as an argument: named here, not miscounted."""
        if unknown := next((arg for arg in args if arg.startswith("-") and arg != "-"), None):
            fail(f"unknown option {unknown} (-h lists the options)")
        super().process_options(args, opts)  # type: ignore[misc]  # ScrapyCommand's, next in the command's MRO
