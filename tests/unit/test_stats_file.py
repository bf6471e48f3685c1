"""TMAPI_STATS_FILE: the final stats as JSON, datetimes as ISO strings, no token, whole or absent."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.spiders import Spider
from scrapy.utils.test import get_crawler

from tmapi_spiders.extensions.stats_file import TmapiStatsFile, jsonable

TOKEN = "tok-Unit-Secret-9"


class Named(Spider):
    name = "named"


def test_off_unless_a_path_is_set() -> None:
    with pytest.raises(NotConfigured):
        TmapiStatsFile.from_crawler(get_crawler(Named, {"TMAPI_STATS_FILE": ""}))


def test_datetimes_become_iso_strings_and_the_rest_stays_json() -> None:
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    values = {"t": when, "d": datetime.timedelta(seconds=1.5), "n": None, "x": {1, 2}, "o": object}
    out = json.loads(json.dumps(values, default=jsonable))
    assert out["t"] == "2026-01-02T03:04:05+00:00" and out["d"] == 1.5 and out["n"] is None
    assert sorted(out["x"]) == [1, 2] and isinstance(out["o"], str)


def test_written_whole_with_placeholders_and_the_token_redacted(tmp_path: Path) -> None:
    crawler = get_crawler(
        Named,
        {
            "TMAPI_STATS_FILE": str(tmp_path / "s" / "%(name)s-%(worker)s.json"),
            "TMAPI_WORKER_ID": "w1",
            "TMAPI_API_TOKEN": TOKEN,
        },
    )
    ext = TmapiStatsFile.from_crawler(crawler)
    assert crawler.stats is not None
    crawler.stats.set_value("start_time", datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC))
    crawler.stats.set_value(f"retry/reason_count/{TOKEN}", 2)
    crawler.stats.set_value("tmapi/paid_calls", 7)
    crawler.signals.send_catch_log(signals.engine_stopped)
    path = tmp_path / "s" / "named-w1.json"
    assert ext.path == str(path)
    text = path.read_text(encoding="utf-8")
    assert TOKEN not in text
    stats = json.loads(text)
    assert stats["tmapi/paid_calls"] == 7 and stats["start_time"] == "2026-01-02T00:00:00+00:00"
    assert stats["retry/reason_count/[redacted]"] == 2
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
