"""Signals of our own, for extensions that follow images (progress, run summary).

image_finished(image: dict) is sent once per image when its search ends, whatever
the outcome; `image` carries query_image_url, status ("done" or "failed"), reason,
total_count, pages, items, duplicates.
"""

image_finished = object()

# TMAPI_AUTH=auto: auth_learned(way) is sent once the gateway has shown which way it takes
# the token ("header" or "query"); auth_known(way) tells the download handler a way learned
# elsewhere (another worker of a distributed job). Neither carries the token.
auth_learned = object()
auth_known = object()

# request_done(request) is sent once a request's work is done: every record its callback or
# errback gave is through the item path (written by the feeds, or dropped with a reason) and
# every follow-up request it gave is queued (tmapi_spiders/done.py). Only in a worker of a
# distributed job, where it decides when a lease is acknowledged.
request_done = object()

# stop_starting(reason) is sent once when the crawl will start no new image: the spending cap
# is reached (spending.py). The spider stops reading its list; what it did not start is
# counted and listed once at the end (the run summary), not refused one request at a time.
stop_starting = object()
