"""Issue 17's behaviours that make the crawl cheap, checked by what they do, never by time.

Real crawls against the bundled sandbox and real redis-servers; the figures themselves
(CPU per page, CPU a second, Redis commands per page, rates) are benchmarks/speed.py's.
"""

from __future__ import annotations

import re
from pathlib import Path

from scrapy.settings import Settings

from tests.crawl_helpers import crawl
from tests.probes import ImportProbe
from tmapi_spiders.lean import LeanStartAddon
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread


def stat(stderr: str, name: str) -> int:
    match = re.search(rf"'{re.escape(name)}': (\d+)", stderr)
    assert match, f"no {name} in the crawl's stats"
    return int(match.group(1))


def test_the_seed_loop_holds_a_long_list_out_of_the_scheduler(tmp_path: Path) -> None:
    # 150 one-page images through 4 download slots: start() is read only when the engine
    # has room, so the scheduler never holds more than a few requests, and every image is crawled.
    urls = [f"https://cbu01.alicdn.com/img/seedloop/{i}/total-20.jpg" for i in range(150)]
    seeds = tmp_path / "images.txt"
    seeds.write_text("\n".join(urls) + "\n", encoding="utf-8")
    with SandboxThread(SandboxConfig(latency=0.02, seed=5)) as api:
        result = crawl(
            tmp_path,
            api.base_url,
            {"urls_file": str(seeds)},
            {
                "CONCURRENT_REQUESTS": 4,
                "AUTOTHROTTLE_ENABLED": False,
                "EXTENSIONS": '{"tests.probes.SchedulerProbe": 900}',
            },
        )
    assert result.returncode == 0, result.stderr[-2000:]
    assert {p["query_image_url"] for p in result.products} == set(urls)
    assert len(result.products) == 150 * 20
    assert 1 <= stat(result.stderr, "probe/max_scheduled") <= 4


def test_a_single_process_crawl_imports_no_redis_aiohttp_or_tldextract(tmp_path: Path) -> None:
    # Each cost 40-100 ms before the first call; none is used by a single-process crawl with
    # cookies and remote control off (the project's defaults).
    seeds = tmp_path / "images.txt"
    seeds.write_text("https://cbu01.alicdn.com/img/lean/1/total-40.jpg\n", encoding="utf-8")
    with SandboxThread(SandboxConfig(seed=5)) as api:
        result = crawl(
            tmp_path,
            api.base_url,
            {"urls_file": str(seeds)},
            {"EXTENSIONS": '{"tests.probes.ImportProbe": 900}'},
        )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.products) == 40  # validated (the schema loads at the first record) and written
    for name in ImportProbe.WATCHED:
        assert stat(result.stderr, f"probe/imported/{name}") == 0, name


def test_cookies_and_remote_control_switched_on_are_loaded_as_before() -> None:
    def components(**overrides: object) -> tuple[dict[str, object], dict[str, object]]:
        settings = Settings()
        settings.setmodule("tmapi_spiders.settings", priority="project")
        settings.update(overrides, priority="cmdline")
        LeanStartAddon().update_settings(settings)
        return dict(settings.getwithbase("DOWNLOADER_MIDDLEWARES")), dict(settings.getwithbase("EXTENSIONS"))

    cookies = "scrapy.downloadermiddlewares.cookies.CookiesMiddleware"
    remote = "scrapy.extensions.remote_control.RemoteControl"
    middlewares, extensions = components()
    assert cookies not in middlewares and remote not in extensions
    middlewares, extensions = components(COOKIES_ENABLED=True, REMOTE_CONTROL_ENABLED=True)
    assert middlewares[cookies] == 700 and extensions[remote] == 0
    # A project that names the component itself keeps its own choice.
    middlewares, _ = components(DOWNLOADER_MIDDLEWARES={cookies: 701})
    assert middlewares[cookies] == 701
