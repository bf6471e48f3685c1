"""`python -m tmapi_spiders.registry > docs/settings.md`: the settings reference, generated."""

import sys

from scrapy.settings import Settings

from tmapi_spiders.registry import import_addons, reference

project = Settings()
project.setmodule("tmapi_spiders.settings")
import_addons(project)  # the project's add-ons declare their settings
sys.stdout.write(reference())
