"""Feed exporters: a CSV people can read (nested fields as dotted columns), fast JSON Lines."""

from __future__ import annotations

import json
from typing import Any

import orjson
from scrapy.exporters import CsvItemExporter, JsonLinesItemExporter
from scrapy.utils.serialize import ScrapyJSONEncoder

from tmapi_spiders.api import contract
from tmapi_spiders.items import CONTEXT_FIELDS


def cell(value: Any) -> Any:
    """A scalar as a CSV cell: booleans as JSON writes them (`true`/`false`), None as an empty cell."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else value


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
                flat[name] = " | ".join(str(cell(v)) for v in value)
            else:
                flat[name] = json.dumps(value, ensure_ascii=False)
        else:
            flat[name] = value
    return flat


# A fixed header (Scrapy's follows the first record): the item's fields named as flatten() names them;
# other fields go, as JSON, into `extra`.
CSV_COLUMNS = (*flatten(contract.ITEM_SHAPE), *CONTEXT_FIELDS, "extra")
_CSV_COLUMN_SET = frozenset(CSV_COLUMNS)


class FlatCsvItemExporter(CsvItemExporter):
    def __init__(self, file: Any, **kwargs: Any) -> None:
        self._fixed = kwargs.get("fields_to_export") is None
        if self._fixed:
            kwargs["fields_to_export"] = list(CSV_COLUMNS)
        super().__init__(file, **kwargs)

    def export_item(self, item: Any) -> None:
        record = dict(item)
        if isinstance(record.get("filters"), dict):  # our own object, its keys varying with the query: one cell
            record["filters"] = json.dumps(record["filters"], ensure_ascii=False, sort_keys=True)
        flat = flatten(record)
        if self._fixed:
            extra = {k: v for k, v in flat.items() if k not in _CSV_COLUMN_SET}
            if extra:  # Scrapy writes only the header's columns
                flat["extra"] = json.dumps(extra, ensure_ascii=False, default=str)
        super().export_item({name: cell(value) for name, value in flat.items()})


class FastJsonLinesItemExporter(JsonLinesItemExporter):
    """JSON Lines through orjson for dict items without FEED_EXPORT_FIELDS; what orjson cannot encode
    (a huge integer) goes the stock way."""

    def __init__(self, file: Any, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._fast = self.encoding in ("utf-8", "utf8", "UTF-8") and not kwargs.get("ensure_ascii")
        self._default = ScrapyJSONEncoder().default

    def export_item(self, item: Any) -> None:
        if self._fast and self.fields_to_export is None and isinstance(item, dict):
            try:
                self.file.write(orjson.dumps(item, default=self._default, option=orjson.OPT_APPEND_NEWLINE))
                return
            except TypeError:
                pass
        super().export_item(item)
