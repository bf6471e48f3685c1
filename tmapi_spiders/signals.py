"""Signals of our own, for extensions that follow images (progress, run summary).

image_finished(image: dict) is sent once per image when its search ends, whatever the outcome;
`image` carries query_image_url, status ("done" or "failed"), reason, total_count, pages, items,
duplicates, ended.
"""

image_finished = object()

# TMAPI_AUTH=auto: auth_learned(way) is sent once the gateway has shown which way ("header" or
# "query") it takes the token; auth_known(way) tells the download handler a way another worker learned.
auth_learned = object()
auth_known = object()

# request_done(request), in a distributed worker: every record the request gave is through the
# item path and every follow-up request is queued (done.py); its lease may be acknowledged.
request_done = object()

# stop_starting(reason) is sent once when the crawl will start no new image (the spending cap):
# the spider stops reading its list; the run summary lists what was not started.
stop_starting = object()
