"""The settings registry: one definition per setting, the generated reference, one error shape."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from scrapy.settings import Settings
from scrapy.utils.project import get_project_settings

from tests.crawl_helpers import REPO
from tmapi_spiders import registry
from tmapi_spiders.registry import ConfigError

registry.import_addons(get_project_settings())  # as `scrapy crawl` does: the sandbox's add-on declares its settings


def test_the_settings_reference_is_the_registry() -> None:
    written = (REPO / "docs" / "settings.md").read_text(encoding="utf-8")
    assert written == registry.reference(), "run: python -m tmapi_spiders.registry > docs/settings.md"


def test_the_documented_command_writes_the_reference() -> None:
    # `python -m tmapi_spiders.registry > docs/settings.md`, as the reference's first lines say
    out = subprocess.run(
        [sys.executable, "-m", "tmapi_spiders.registry"], cwd=REPO, capture_output=True, check=True
    ).stdout
    assert out.decode("utf-8") == (REPO / "docs" / "settings.md").read_text(encoding="utf-8")


def test_every_setting_the_code_reads_is_in_the_registry() -> None:
    used: set[str] = set()
    for path in Path(REPO / "tmapi_spiders").rglob("*.py"):
        used |= set(re.findall(r"\"(TMAPI_[A-Z_]+)\"", path.read_text(encoding="utf-8")))
    assert used, "found no TMAPI_* settings in the code"
    assert sorted(used - set(registry.BY_NAME)) == []


def test_the_project_settings_take_every_default() -> None:
    from tmapi_spiders import settings as project

    for setting in registry.SETTINGS:
        assert hasattr(project, setting.name), setting.name


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TMAPI_SANDBOX", "maybe", "TMAPI_SANDBOX must be true or false, got 'maybe'"),
        ("TMAPI_AUTH", "cookie", "TMAPI_AUTH must be one of auto, header, query, got 'cookie'"),
        ("TMAPI_BASE_URL", "ftp://x", "TMAPI_BASE_URL must be an http(s) URL, got 'ftp://x'"),
        ("TMAPI_MAX_CALLS", "-1", "TMAPI_MAX_CALLS must be a whole number of calls, 0 or more (0: no cap), got '-1'"),
        ("TMAPI_MAX_CALLS", "ten", "TMAPI_MAX_CALLS must be a whole number of calls, 0 or more (0: no cap), got 'ten'"),
        ("TMAPI_BACKOFF_MAX", "nan", "TMAPI_BACKOFF_MAX must be a number of seconds, 0 or more, got 'nan'"),
        (
            "TMAPI_SANDBOX_PORT",
            "7e4",
            "TMAPI_SANDBOX_PORT must be a whole number, from 0 to 65535 (0: not running), got '7e4'",
        ),
    ],
)
def test_one_message_shape_for_every_bad_value(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        registry.check(Settings({name: value}))
    assert str(info.value).startswith(message)


def test_defaults_read_the_environment_where_marked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMAPI_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("TMAPI_JOB", "not-from-env")
    values = registry.defaults()
    assert values["TMAPI_BASE_URL"] == "http://127.0.0.1:9"
    assert values["TMAPI_JOB"] == ""  # not an environment setting
    registry.check(Settings(values))  # the defaults themselves are valid
