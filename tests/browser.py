"""A real headless Chromium driven over the DevTools protocol, for the HTML report's tests and
benchmark: open a file, run JavaScript in it, collect console errors, take screenshots.

No browser-automation package: Debian's `chromium` with `--remote-debugging-port` and
aiohttp's websocket client (already a dependency) are enough for what the tests ask.
Every host name resolves to nothing (`--host-resolver-rules`), so a test never reaches
the network and thumbnails fall back to their placeholders, as in an offline browser.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
OFFLINE = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def find_chromium() -> str | None:
    """The browser binary: $CHROMIUM, else the first of CANDIDATES on PATH."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if shutil.which(explicit) else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class BrowserError(Exception):
    """The browser did not start, a page did not load, or a script threw."""


class Page:
    """One tab: navigate, evaluate, screenshot; console errors and exceptions are collected."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.waiters: list[tuple[str, asyncio.Future[dict[str, Any]]]] = []
        self.errors: list[str] = []
        self.tasks: set[asyncio.Future[Any]] = set()  # kept so they are not collected while they run
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            payload = json.loads(message.data)
            if "id" in payload:
                future = self.pending.pop(payload["id"], None)
                if future is not None and not future.done():
                    future.set_result(payload)
                continue
            self._event(payload)

    def _event(self, payload: dict[str, Any]) -> None:
        method, params = payload.get("method", ""), payload.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.errors.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            words = (str(a.get("value", a.get("description"))) for a in params.get("args", ()))
            self.errors.append("console: " + " ".join(words))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            # Image loads that fail offline are the network's, not the page's: everything else counts.
            if entry.get("level") == "error" and entry.get("source") != "network":
                self.errors.append(f"log ({entry.get('source')}): {entry.get('text')}")
        elif method == "Page.javascriptDialogOpening":
            # An alert() is the page running data as code: record it, and close it so the page goes on.
            self.errors.append(f"dialog ({params.get('type')}): {params.get('message')}")
            self.tasks.add(asyncio.ensure_future(self.send("Page.handleJavaScriptDialog", accept=True)))
        for name, future in list(self.waiters):
            if name == method and not future.done():
                future.set_result(params)
                self.waiters.remove((name, future))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[ident] = future
        await self.ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        answer = await asyncio.wait_for(future, 60)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def event(self, method: str) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiters.append((method, future))
        return future

    async def goto(self, url: str, timeout: float = 60) -> None:
        """Navigate and wait for the load event, then for the report's own `data-ready` mark."""
        loaded = self.event("Page.loadEventFired")
        answer = await self.send("Page.navigate", url=url)
        if answer.get("errorText"):
            raise BrowserError(f"cannot open {url}: {answer['errorText']}")
        await asyncio.wait_for(loaded, timeout)

    async def js(self, expression: str) -> Any:
        """The value of an expression (awaited if it is a promise), or BrowserError if it threw."""
        answer = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True, userGesture=True
        )
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            raise BrowserError(details.get("exception", {}).get("description") or details.get("text"))
        return answer["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = await self.js(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {expression}")
            await asyncio.sleep(0.05)

    async def viewport(self, width: int, height: int, mobile: bool = False) -> None:
        await self.send(
            "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile
        )

    async def screenshot(self, path: Path, full_page: bool = False) -> None:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = await self.send("Page.getLayoutMetrics")
            size = metrics["cssContentSize"]
            params.update(captureBeyondViewport=True, clip={**size, "x": 0, "y": 0, "scale": 1})
        shot = await self.send("Page.captureScreenshot", **params)
        path.write_bytes(base64.b64decode(shot["data"]))

    async def close(self) -> None:
        self.reader.cancel()
        await self.ws.close()


class Browser:
    """`async with Browser() as browser: page = await browser.page()`: a headless Chromium with
    its own profile directory, stopped (its process only) on exit."""

    def __init__(self, binary: str | None = None, width: int = 1280, height: int = 900) -> None:
        self.binary = binary or find_chromium()
        self.size = (width, height)
        self.proc: subprocess.Popen[bytes] | None = None
        self.session: aiohttp.ClientSession | None = None
        self.profile = ""
        self.port = 0

    async def __aenter__(self) -> Browser:
        if not self.binary:
            raise BrowserError("no chromium binary found")
        self.profile = tempfile.mkdtemp(prefix="tmapi-chromium-")
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--headless",
                "--disable-gpu",
                "--no-sandbox",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                f"--host-resolver-rules={OFFLINE}",
                f"--window-size={self.size[0]},{self.size[1]}",
                f"--user-data-dir={self.profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.port = await asyncio.to_thread(self._devtools_port)
        self.session = aiohttp.ClientSession()
        return self

    def _devtools_port(self) -> int:
        """Chromium writes `DevTools listening on ws://127.0.0.1:PORT/...` to stderr once ready."""
        assert self.proc is not None and self.proc.stderr is not None
        seen = []
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            seen.append(line)
            found = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if found:
                # Keep draining stderr, or a chatty browser would block on a full pipe.
                threading.Thread(target=self.proc.stderr.read, daemon=True).start()
                return int(found.group(1))
        raise BrowserError("chromium exited before DevTools was ready: " + "".join(seen)[-2000:])

    async def page(self) -> Page:
        assert self.session is not None
        async with self.session.put(f"http://127.0.0.1:{self.port}/json/new?about:blank") as answer:
            target = await answer.json(content_type=None)
        ws = await self.session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
        page = Page(ws)
        for domain in ("Page", "Runtime", "Log"):
            await page.send(f"{domain}.enable")
        await page.send("Page.bringToFront")  # a background tab records no paint timings
        await page.viewport(*self.size)
        return page

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()
        if self.proc is not None:
            self.proc.terminate()
            try:
                await asyncio.to_thread(self.proc.wait, 10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)
        if self.profile:
            shutil.rmtree(self.profile, ignore_errors=True)


async def open_report(browser: Browser, path: Path, fragment: str = "") -> Page:
    """A tab with the report at `path` loaded and its first render done."""
    page = await browser.page()
    await page.goto(path.resolve().as_uri() + (f"#{fragment}" if fragment else ""))
    await page.wait_for("document.documentElement.dataset.ready === '1'")
    return page


async def _screenshot(report: Path, png: Path, width: int, height: int, mobile: bool) -> None:
    async with Browser(width=width, height=height) as browser:
        page = await open_report(browser, report)
        if mobile:
            await page.viewport(width, height, mobile=True)
        await page.js("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        await page.screenshot(png)
        if page.errors:
            raise BrowserError("; ".join(page.errors))
        await page.close()


def main() -> None:
    """`python -m tests.browser REPORT.html OUT.png [--width W --height H --mobile]`: how
    docs/report.png is made (docs/report.md)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("report", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--mobile", action="store_true")
    args = parser.parse_args()
    if not args.report.is_file():
        raise SystemExit(f"error: {args.report}: no such file")
    if find_chromium() is None:
        raise SystemExit("error: no chromium binary (Debian: apt-get install chromium)")
    asyncio.run(_screenshot(args.report, args.png, args.width, args.height, args.mobile))


if __name__ == "__main__":
    main()
