"""Feed URI placeholders for a worker's own feed files (`-o 'out/products-%(worker)s.jsonl'`).

A worker's local feeds are written unbuffered and checked (tmapi_spiders/crawl/done.py): each
exported line is a write(2) into the kernel, which outlives the process, before its lease
is acknowledged.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from scrapy import Spider


def uri_params(params: dict[str, Any], spider: Spider) -> dict[str, Any]:
    """Feed URI placeholders for a worker: %(worker)s, %(host)s, %(pid)s."""
    worker = spider.settings.get("TMAPI_WORKER_ID") or ""
    return {**params, "worker": worker, "host": socket.gethostname(), "pid": os.getpid()}
