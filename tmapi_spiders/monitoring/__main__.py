"""`python -m tmapi_spiders.monitoring > tmapi_spiders/monitoring/product.schema.json`: the
product record's JSON Schema for Spidermon, from the pydantic model."""

import sys

from tmapi_spiders.monitoring import schema_text

sys.stdout.write(schema_text())
