"""`GuardsAddon`: the two extensions that keep the crawl's promises stay on whatever EXTENSIONS says.

`-s EXTENSIONS='{...}'` replaces the project's EXTENSIONS dict whole (Scrapy merges
dicts only with the `_BASE` one), so a user who adds one extension of their own would
otherwise remove, without a word, the log redaction (no log line shows the token) and
the inspection check (the crawl stops at open when a Scrapy internal the project reads
has changed, instead of leases being acknowledged too early). Both cost nothing while
they have nothing to do (NotConfigured without a token; one look at open), so this
add-on puts them back through Scrapy's public `set_in_component_priority_dict`, even
where a user set them to None: neither is a feature to switch off.
"""

from __future__ import annotations

from scrapy.settings import BaseSettings

from tmapi_spiders.extensions.redaction import LogRedaction
from tmapi_spiders.inspection import InspectionCheck

GUARDS = (LogRedaction, InspectionCheck)


class GuardsAddon:
    """Keeps LogRedaction and InspectionCheck in EXTENSIONS (see the module docstring)."""

    def update_settings(self, settings: BaseSettings) -> None:
        for cls in GUARDS:
            settings.set_in_component_priority_dict("EXTENSIONS", cls, 0)
