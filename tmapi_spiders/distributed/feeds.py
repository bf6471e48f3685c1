"""Per-worker feeds that survive `kill -9`.

A lease is acknowledged only after its items went through the feed exporter; the
stock file storage writes through a userspace buffer that dies with the process, so
a killed worker would lose acknowledged items. This storage opens the file
unbuffered: every exported line is a write(2) into the kernel, which outlives the process.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import IO, Any

from scrapy import Spider
from scrapy.extensions.feedexport import FileFeedStorage


class UnbufferedFileFeedStorage(FileFeedStorage):
    def open(self, spider: Spider) -> IO[bytes]:
        path = Path(self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, self.write_mode, buffering=0)  # closed by store()


def uri_params(params: dict[str, Any], spider: Spider) -> dict[str, Any]:
    """Feed URI placeholders for a worker: %(worker)s, %(host)s, %(pid)s."""
    worker = spider.settings.get("TMAPI_WORKER_ID") or ""
    return {**params, "worker": worker, "host": socket.gethostname(), "pid": os.getpid()}
