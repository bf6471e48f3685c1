"""`python -m tmapi_spiders.registry > docs/settings.md`: the settings reference, generated."""

import sys

from tmapi_spiders.registry import reference

sys.stdout.write(reference())
