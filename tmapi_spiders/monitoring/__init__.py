"""Spidermon for this API, optional: `pip install 'tmapi-spiders[monitoring]'`, then
`-s SPIDERMON_ENABLED=true`.

`configure` (called by the project's add-on) turns on, when SPIDERMON_ENABLED is true, what a team that watches its
crawls with Spidermon expects, in Spidermon's own settings (any of them given with -s or in
a project's settings wins):

- Spidermon's extension, with `monitors.TmapiMonitorSuite` run when the spider closes
  (SPIDERMON_SPIDER_CLOSE_MONITORS): finished cleanly, failed images within
  TMAPI_MONITOR_MAX_FAILED_IMAGES, records near what total_count promised
  (TMAPI_MONITOR_MIN_RECORDS_RATIO), paid calls within TMAPI_MAX_CALLS, no page paid twice,
  and Spidermon's item validation monitor.
- Spidermon's `ItemValidationPipeline` after ours, checking each product record against
  `product.schema.json`, the JSON Schema generated from the pydantic model that
  ValidationPipeline enforces (tmapi_spiders/api/schema.py; `python -m tmapi_spiders.monitoring`
  writes it, a unit test fails when the two drift). Failure records are not validated.
- Alerts through Spidermon's own actions, each attached only when its settings are given
  (an action without them stops every crawl at start): e-mail over SMTP
  (SPIDERMON_SMTP_HOST and SPIDERMON_EMAIL_TO), Slack (SPIDERMON_SLACK_SENDER_TOKEN and
  SPIDERMON_SLACK_RECIPIENTS), Telegram (SPIDERMON_TELEGRAM_SENDER_TOKEN and
  SPIDERMON_TELEGRAM_RECIPIENTS). What Spidermon requires and cannot guess is `check`ed
  before the first paid call (one line, exit 2); the rest has a default here.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from scrapy.settings import BaseSettings

from tmapi_spiders.items import ProductItem
from tmapi_spiders.settings_util import priority_above

SCHEMA_PATH = Path(__file__).with_name("product.schema.json")
EXTENSION = "spidermon.contrib.scrapy.extensions.Spidermon"
VALIDATION_PIPELINE = "spidermon.contrib.scrapy.pipelines.ItemValidationPipeline"
SUITE = "tmapi_spiders.monitoring.monitors.TmapiMonitorSuite"

# Defaults for what Spidermon's actions require: the run (spider, start) and each failing
# monitor with its reason, never a setting's value (the token, the SMTP password).
SUBJECT = "tmapi-spiders {{ data.spider.name }} run of {{ data.stats.start_time }}: monitors failed"
BODY_TEXT = (
    "Run: {{ data.spider.name }}, started {{ data.stats.start_time }},"
    " finish reason {{ data.stats.finish_reason }}\n"
    "Failed monitors:\n"
    "{% for r in result.monitors_failed_results %}- {{ r.monitor.name }}: {{ r.reason }}\n{% endfor %}"
)


class MonitoringError(Exception):
    """Spidermon is asked for and cannot run as configured: the one line to show."""


def enabled(settings: BaseSettings) -> bool:
    try:
        return settings.getbool("SPIDERMON_ENABLED")
    except ValueError:
        value = settings.get("SPIDERMON_ENABLED")
        raise MonitoringError(f"SPIDERMON_ENABLED must be true or false, not {value!r}") from None


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def check(settings: BaseSettings) -> None:
    """MonitoringError naming what is missing, before the first paid call."""
    if not enabled(settings):
        return
    for module in ("spidermon", "jinja2", "premailer"):
        if not _importable(module):
            raise MonitoringError(
                f"SPIDERMON_ENABLED needs {module}, which is not installed: pip install 'tmapi-spiders[monitoring]'"
            )
    if settings.get("SPIDERMON_SMTP_HOST"):
        missing = [
            name
            for name in ("SPIDERMON_EMAIL_TO", "SPIDERMON_SMTP_USER", "SPIDERMON_SMTP_PASSWORD")
            if not settings.get(name)
        ]
        if missing:
            raise MonitoringError(
                f"SPIDERMON_SMTP_HOST is set, so alerts go by e-mail: {' and '.join(missing)} must be set too"
                " (Spidermon's SMTP action logs in to the server)"
            )


def alert_actions(settings: BaseSettings) -> list[str]:
    """Spidermon's actions whose settings are given (each needs its own to start)."""
    actions: list[str] = []
    if settings.get("SPIDERMON_SMTP_HOST") and settings.get("SPIDERMON_EMAIL_TO"):
        actions.append("spidermon.contrib.actions.email.smtp.SendSmtpEmail")
    if settings.get("SPIDERMON_SLACK_SENDER_TOKEN") and settings.get("SPIDERMON_SLACK_RECIPIENTS"):
        actions.append("spidermon.contrib.actions.slack.notifiers.SendSlackMessageSpiderFinished")
    if settings.get("SPIDERMON_TELEGRAM_SENDER_TOKEN") and settings.get("SPIDERMON_TELEGRAM_RECIPIENTS"):
        actions.append("spidermon.contrib.actions.telegram.notifiers.SendTelegramMessageSpiderFinished")
    return actions


def product_schema() -> dict[str, Any]:
    """The JSON Schema of a product record, from the pydantic model ValidationPipeline uses
    (pydantic imported here: `scrapy crawl` imports this module for every `scrapy` command)."""
    from pydantic import TypeAdapter

    from tmapi_spiders.api.schema import Product

    schema: dict[str, Any] = TypeAdapter(Product).json_schema()
    schema["title"] = "tmapi-spiders product record"
    return schema


def schema_text() -> str:
    return json.dumps(product_schema(), indent=2, sort_keys=True) + "\n"


def configure(settings: BaseSettings) -> None:
    """SPIDERMON_ENABLED=true: Spidermon's extension, our suite, item validation (see module doc).
    Called by the project's add-on (tmapi_spiders/addons.py)."""
    if not enabled(settings):
        return
    extensions = settings.getdict("EXTENSIONS")
    extensions.setdefault(EXTENSION, 500)
    settings.set("EXTENSIONS", extensions, priority=priority_above(settings, "EXTENSIONS"))
    pipelines = settings.getdict("ITEM_PIPELINES")
    pipelines.setdefault(VALIDATION_PIPELINE, 800)  # after ours (100, 200)
    settings.set("ITEM_PIPELINES", pipelines, priority=priority_above(settings, "ITEM_PIPELINES"))
    defaults: dict[str, Any] = {
        "SPIDERMON_SPIDER_CLOSE_MONITORS": [SUITE],
        "SPIDERMON_MAX_ITEM_VALIDATION_ERRORS": 0,  # Spidermon's item validation monitor needs a threshold
        # Spidermon finds validators by the item's exact class.
        "SPIDERMON_VALIDATION_SCHEMAS": {ProductItem: [str(SCHEMA_PATH)]},
        "SPIDERMON_EMAIL_SUBJECT": SUBJECT,
        "SPIDERMON_BODY_TEXT": BODY_TEXT,
        "SPIDERMON_EMAIL_SENDER": settings.get("MAIL_FROM") or "tmapi-spiders@localhost",
    }
    for name, value in defaults.items():
        if not settings.get(name):
            settings.set(name, value, priority="addon")
