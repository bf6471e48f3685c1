"""`LeanStartAddon`: a component that is switched off by its setting is not imported at all.

Scrapy imports every middleware and extension it is given and only then lets it refuse
(NotConfigured). Two of its defaults pull in large libraries that way, for nothing in a
crawl of a JSON API (issue 17, time to the first call): the cookies middleware loads
tldextract (~40 ms) with COOKIES_ENABLED off, and the remote-control extension loads
aiohttp's web server (~100 ms) with REMOTE_CONTROL_ENABLED off, the telnet console
Twisted's conch with TELNETCONSOLE_ENABLED off. Setting either to None
in DOWNLOADER_MIDDLEWARES / EXTENSIONS does not help: Scrapy's `getwithbase` imports every
key of those dicts, None or not, to compare it with the `_BASE` ones. So this add-on,
through Scrapy's documented `update_settings` hook for add-ons, takes each out of the
`_BASE` dict (DOWNLOADER_MIDDLEWARES_BASE, EXTENSIONS_BASE: Scrapy settings like any
other), and only while its own setting keeps it off and the project names it nowhere:
turn cookies or remote control on and they are loaded as before.
"""

from __future__ import annotations

from scrapy.settings import BaseSettings

# (component dict, component path, the setting that switches it on)
SWITCHED_OFF = (
    ("DOWNLOADER_MIDDLEWARES", "scrapy.downloadermiddlewares.cookies.CookiesMiddleware", "COOKIES_ENABLED"),
    ("EXTENSIONS", "scrapy.extensions.remote_control.RemoteControl", "REMOTE_CONTROL_ENABLED"),
    ("EXTENSIONS", "scrapy.extensions.telnet.TelnetConsole", "TELNETCONSOLE_ENABLED"),  # twisted.conch, ~10 ms
)


class LeanStartAddon:
    """Leaves out the components whose setting switches them off (see the module docstring)."""

    def update_settings(self, settings: BaseSettings) -> None:
        for dict_name, path, switch in SWITCHED_OFF:
            try:
                on = settings.getbool(switch)
            except ValueError:
                continue  # a bad value: Scrapy's own component reports it
            if on:
                continue
            if path in settings.getdict(dict_name):
                continue  # named by the project or the user: their choice stands
            base_name = f"{dict_name}_BASE"
            base = settings.getdict(base_name)
            if path in base:
                del base[path]
                settings.set(base_name, base, priority=settings.getpriority(base_name) or "default")
