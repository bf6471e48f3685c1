"""A CSV feed people can read: nested fields as dotted columns, lists joined."""

from __future__ import annotations

import json
from typing import Any

from scrapy.exporters import CsvItemExporter

LIST_SEPARATOR = " | "


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}, "c": [1, 2]} -> {"a.b": 1, "c": "1 | 2"}; lists of objects as JSON."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if value:
                flat.update(flatten(value, name + "."))
            else:
                flat[name] = ""
        elif isinstance(value, list | tuple):
            if all(not isinstance(v, dict | list | tuple) for v in value):
                flat[name] = LIST_SEPARATOR.join("" if v is None else str(v) for v in value)
            else:
                flat[name] = json.dumps(value, ensure_ascii=False)
        else:
            flat[name] = value
    return flat


class FlatCsvItemExporter(CsvItemExporter):
    def export_item(self, item: Any) -> None:
        super().export_item(flatten(dict(item)))
