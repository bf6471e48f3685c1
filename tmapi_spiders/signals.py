"""Signals of our own, for extensions that follow images and workers of a shared job."""

# image_finished(image): once per image when its search ends; `image` carries query_image_url, status
# ("done" or "failed"), reason, total_count, pages, items, duplicates, ended.
image_finished = object()
# TMAPI_AUTH=auto: auth_learned(way) once the gateway has shown which way ("header" or "query") it takes
# the token; auth_known(way) tells the download handler a way another worker learned.
auth_learned = object()
auth_known = object()
# request_done(request), in a distributed worker: the request's records are written and its follow-ups queued.
request_done = object()
# stop_starting(reason): the crawl starts no new image (the spending cap).
stop_starting = object()
