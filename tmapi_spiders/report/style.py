"""The report page's style sheet (`static/report.css`), also the base of the watch page's."""

from tmapi_spiders.report.page import static

CSS = static("report.css")
