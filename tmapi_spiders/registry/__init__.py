"""Every setting of ours (the table is `table.py`): defaults, checks ("NAME must be ..., got VALUE"),
typed reads (`read`) and docs/settings.md (`python -m tmapi_spiders.registry`)."""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

from scrapy.settings import BaseSettings
from scrapy.utils.conf import build_component_list
from scrapy.utils.misc import load_object

from tmapi_spiders.registry.table import SETTINGS, Setting

PREFIX = "TMAPI_"
# The test harness's own environment variables (tests/redis_server.py): not settings.
HARNESS_PREFIX = PREFIX + "TEST_"


class ConfigError(ValueError):
    """A bad argument or setting: the message is the whole story, shown as one line."""


BY_NAME = {setting.name: setting for setting in SETTINGS}


def declare(*settings: Setting) -> None:
    """An add-on's own settings, declared when its module is imported: checked, read and documented as
    the table's (settings.py does not set them)."""
    for setting in settings:
        BY_NAME.setdefault(setting.name, setting)


def import_addons(settings: BaseSettings) -> None:
    """Import the add-ons in ADDONS, so that each declares its settings before names are checked."""
    for path in build_component_list(settings.getdict("ADDONS")):
        load_object(path)


def defaults() -> dict[str, Any]:
    """What settings.py sets: each default, or its environment variable where it has one."""
    return {s.name: os.environ.get(s.name, s.default) if s.env else s.default for s in SETTINGS}


def read(settings: BaseSettings, name: str) -> Any:
    """The setting's value, typed and checked (its default when unset, or empty for a number), or ConfigError."""
    setting = BY_NAME[name]
    raw = settings.get(name)
    if raw is None or (raw == "" and setting.kind in ("int", "float")):
        return setting.default
    getter = {"bool": settings.getbool, "int": settings.getint, "float": settings.getfloat}.get(setting.kind)
    try:
        value = getter(name) if getter else str(raw).strip().lower() if setting.kind == "choice" else str(raw)
        if (
            (isinstance(value, float) and not math.isfinite(value))
            or (setting.kind == "choice" and value not in setting.choices)
            or (setting.kind == "url" and not value.startswith(("http://", "https://")))
            or (setting.low is not None and value < setting.low)
            or (setting.high is not None and value > setting.high)
        ):
            raise ValueError(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {setting.expected()}, got {raw!r}") from None
    return value


def check(settings: BaseSettings) -> None:
    """Raise ConfigError for the first setting outside its type, bounds or choices (the add-ons' too)."""
    import_addons(settings)
    for name in BY_NAME:  # an unset one reads as its default, unchecked
        read(settings, name)


def _nearest(name: str) -> str:
    close = difflib.get_close_matches(name, BY_NAME, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def check_names(names: Iterable[str]) -> None:
    """ConfigError for the first unknown `TMAPI_*` name: a typo'd setting would be ignored without a word."""
    for name in sorted(str(n) for n in names):
        if name.startswith(PREFIX) and name not in BY_NAME:
            raise ConfigError(f"unknown setting {name}{_nearest(name)}")


def check_environment(environ: Mapping[str, str]) -> None:
    """ConfigError for a `TMAPI_*` environment variable this project does not read (only those marked `env`)."""
    for name in sorted(environ):
        if not name.startswith(PREFIX) or name.startswith(HARNESS_PREFIX):
            continue
        setting = BY_NAME.get(name)
        if setting is None:
            raise ConfigError(f"unknown setting {name} in the environment{_nearest(name)}")
        if not setting.env:
            read = ", ".join(s.name for s in BY_NAME.values() if s.env and s.name.startswith(PREFIX))
            raise ConfigError(
                f"{name} is set in the environment, which is read only for {read}: give -s {name}=... instead"
            )


def reference() -> str:
    """docs/settings.md: every setting by group, as a table."""
    lines = [
        "# Settings reference",
        "",
        "Generated from `tmapi_spiders/registry/table.py` and the settings the project's add-ons declare,",
        "by `python -m tmapi_spiders.registry > docs/settings.md`; a test fails when the two differ. Set",
        "any of them with `-s NAME=VALUE`, in a project's",
        "`settings.py`, or (where marked) in the environment. A bad value stops the crawl before",
        "the first call with one line: `NAME must be ..., got VALUE`.",
        "",
        "Scrapy's own settings (CONCURRENT_REQUESTS, DOWNLOAD_TIMEOUT, RETRY_TIMES, FEEDS, ...) work",
        "as Scrapy documents them; this project's defaults for them are in `tmapi_spiders/settings.py`.",
    ]
    groups: dict[str, list[Setting]] = {}
    for setting in BY_NAME.values():
        groups.setdefault(setting.group, []).append(setting)
    for group, members in groups.items():
        lines += ["", f"## {group}", "", "| setting | default | allowed | what it does |", "| --- | --- | --- | --- |"]
        for s in members:
            default = "(empty)" if s.default == "" else str(s.default).lower() if s.kind == "bool" else str(s.default)
            env = " Environment variable too." if s.env else ""
            lines.append(f"| `{s.name}` | `{default}` | {s.expected()} | {s.doc}{env} |")
    return "\n".join(lines) + "\n"
