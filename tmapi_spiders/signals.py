"""Signals of our own, for extensions that follow images (progress, run summary).

image_finished(image: dict) is sent once per image when its search ends, whatever
the outcome; `image` carries query_image_url, status ("done" or "failed"), reason,
total_count, pages, items, duplicates.
"""

image_finished = object()
