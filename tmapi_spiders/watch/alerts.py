"""Sending a history run's changes on: a JSON POST to TMAPI_ALERT_WEBHOOK.

A chat hook or a small service receives the changes summary (counts and the alert
matches, never the token) when an alert rule matched. A webhook that is down, slow or
refuses is one warning line and `"webhook": {"sent": false, ...}` in the summary: the
run's results are written already, and its exit code stays what the crawl made it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

TIMEOUT = 10.0


def check_url(url: str) -> None:
    """ValueError unless an http(s) URL with a host (checked before anything is paid)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"TMAPI_ALERT_WEBHOOK must be an http(s) URL, got one starting {url[:8]!r}")


def where(url: str) -> str:
    """The webhook as it may be shown: scheme, host and port (its path may hold a secret)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def post(url: str, payload: dict[str, Any], timeout: float = TIMEOUT) -> str | None:
    """POST `payload` as JSON; None when the hook answered 2xx, else why not (one line)."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "tmapi-spiders"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        return f"{where(url)} answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{where(url)} could not be reached ({reason})"
    if not 200 <= status < 300:
        return f"{where(url)} answered HTTP {status}"
    return None
