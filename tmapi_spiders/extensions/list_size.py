"""How many images the seed list holds, estimated while a big list is still being read: the progress
line's total and ETA must not claim the images read so far are all there are."""

from __future__ import annotations

from typing import Any

from tmapi_spiders.extensions import stat


def images_total(stats: Any) -> tuple[int, bool]:
    """(the list's images, exact?): estimated from the share of the file read until its end is read."""
    total = stats.get_value("tmapi/images_total")
    if total is not None:
        return int(total), True
    listed = stat(stats, "tmapi/images_listed")
    fraction = float(stats.get_value("tmapi/seeds_read_fraction", 0) or 0)
    if fraction > 0:
        return max(listed, round(listed / fraction)), False
    return listed, False
