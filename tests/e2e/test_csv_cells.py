"""CSV cells read as the JSON Lines feed does: booleans are `true`/`false` (not Python's
`True`/`False`), in columns and in joined lists, and `extra` stays real JSON."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from tests.crawl_helpers import crawl
from tmapi_spiders.crawl.exporters import FlatCsvItemExporter
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

BOOLEAN_COLUMNS = ("shop_info.is_factory", "shop_info.tp_member", "delivery_info.free_postage", "super_new_product")


def test_a_crawls_csv_writes_booleans_as_json_does(tmp_path: Path) -> None:
    with SandboxThread(SandboxConfig()) as sandbox:
        result = crawl(
            tmp_path,
            sandbox.base_url,
            args={"urls": "https://cbu01.alicdn.com/img/ibank/csv-bools/total-60.jpg"},
            output="products.csv",
        )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = list(csv.DictReader((tmp_path / "products.csv").open(encoding="utf-8")))
    assert len(rows) == 60
    for column in BOOLEAN_COLUMNS:
        assert {row[column] for row in rows} <= {"true", "false"}, column
    assert not [v for row in rows for v in row.values() if v in ("True", "False")]


def test_booleans_in_lists_and_extra() -> None:
    out = io.BytesIO()
    exporter = FlatCsvItemExporter(out)
    exporter.start_exporting()
    exporter.export_item({"item_id": 1, "title_tags": [True, False, None, "x"], "new_field": {"flag": True}})
    exporter.finish_exporting()
    row = next(csv.DictReader(io.StringIO(out.getvalue().decode("utf-8"))))
    assert row["item_id"] == "1"
    assert row["title_tags"] == "true | false |  | x"
    assert json.loads(row["extra"]) == {"new_field.flag": True}
