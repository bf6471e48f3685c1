"""The JSON Schema Spidermon validates records with is the pydantic model's, and agrees with it."""

from __future__ import annotations

import json

import jsonschema
import pytest

from tmapi_spiders.api.schema import invalid_reason
from tmapi_spiders.monitoring import SCHEMA_PATH, schema_text

GOOD = {"item_id": 1, "product_url": "https://detail.1688.com/offer/1.html", "title": "t",
        "img": "https://cbu01.alicdn.com/a.jpg", "price": "12.50", "extra": {"kept": True}}  # fmt: skip


def test_the_shipped_schema_is_the_models() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "regenerate: python -m tmapi_spiders.monitoring > tmapi_spiders/monitoring/product.schema.json"
    )


@pytest.mark.parametrize(
    "record",
    [GOOD, {**GOOD, "price": "12,50"}, {**GOOD, "item_id": "1"}, {k: v for k, v in GOOD.items() if k != "title"},
     {**GOOD, "img": "//cbu01.alicdn.com/a.jpg"}, {**GOOD, "price_info": {"wholesale_price": ""}}],
)  # fmt: skip
def test_schema_and_model_agree(record: dict) -> None:
    validator = jsonschema.Draft202012Validator(json.loads(schema_text()))
    assert validator.is_valid(record) == (invalid_reason(record) is None)
