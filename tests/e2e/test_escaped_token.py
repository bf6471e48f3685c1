"""A server that quotes the token back escaped: `\\/` as PHP's json_encode writes it,
`\\uXXXX` in either hex case, percent-encoded, or all of them mixed. The token reaches no
file, log line, stat or Redis key in any of those forms.

The sandbox's `echo_escape` option writes its error echo (the request's headers, the
`apikey` header with the token included) escaped that way inside the JSON string; every
convert and search call of the denied images answers with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from tests.crawl_helpers import QUICK_WORKER_SETTINGS, crawl, scrapy, stats_path
from tests.redis_server import RedisServer, contents
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread
from tmapi_spiders.sandbox.gateway import json_string

TOKEN = "tk/Se+cr=t_7/Qx9~"  # `/`, `+`, `=`, `_` and `~`: every one escaped some way
GOOD = [f"https://cbu01.alicdn.com/img/esc-{i}.jpg?total=25" for i in range(2)]
DENIED = [f"https://denied.example-shop.com/esc-{i}.jpg" for i in range(2)]  # convert: 422, echoed


def needles(token: str) -> dict[str, bytes]:
    """The token in every form a file could hold it."""
    forms = {
        "plain": token,
        "quoted": quote(token, safe=""),
        "quote_plus": quote_plus(token, safe=""),
        "php": token.replace("/", "\\/"),
        "json ascii": json.dumps(token)[1:-1],
    }
    for escape in ("slash", "unicode", "mixed"):
        forms[escape] = json_string(token, escape)[1:-1]
        forms[escape + " lower"] = forms[escape].lower()
    found = {name: form.encode() for name, form in forms.items()}
    found["utf-16"] = token.encode("utf-16-le")
    found["repr of php"] = repr(token.replace("/", "\\/")).strip("'").encode()  # a Python repr doubles `\`
    return found


def redis_dump(redis_server: RedisServer) -> bytes:
    return contents(redis_server.client())


@pytest.mark.parametrize("escape", ["slash", "unicode", "mixed"])
def test_an_escaped_echo_of_the_token_lands_nowhere(tmp_path: Path, escape: str) -> None:
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("\n".join([*GOOD, *DENIED]) + "\n")
    config = SandboxConfig(
        tokens=(TOKEN,), echo_errors=True, echo_escape=escape, deny_patterns=(r"denied\.example",), auth="header"
    )
    outputs: list[str] = []
    with SandboxThread(config) as sandbox:
        settings = {"LOG_LEVEL": "DEBUG", "STATS_DUMP": "true", "TMAPI_CACHE": "true", "RETRY_TIMES": "0"}
        single = crawl(tmp_path / "single", sandbox.base_url, {"urls_file": str(seeds)}, settings, token=TOKEN)
        assert single.returncode == 0, single.stderr[-2000:]
        outputs += [single.stdout, single.stderr]
        assert len(single.products) == 2 * 25
        assert {f["query_image_url"] for f in single.failures} == set(DENIED)
        for failure in single.failures:  # the server's echo is there (decoded but for `%XX`), its token masked
            assert failure["status"] == 422 and "[redacted]" in failure["message"], failure
            assert escape == "mixed" or "request headers were" in failure["message"], failure
        assert single.stats["tmapi/token_echoed"] == len(DENIED)
        haystacks = {str(p): p.read_bytes() for p in (tmp_path / "single").rglob("*") if p.is_file()}
        haystacks["stats file"] = stats_path(tmp_path / "single").read_bytes()
        if escape == "mixed":  # a distributed worker too: its Redis keys, values and summary hash
            with RedisServer() as redis_server:
                distributed = {
                    **QUICK_WORKER_SETTINGS,
                    "REDIS_URL": redis_server.url,
                    "TMAPI_JOB": "escaped",
                    "TMAPI_OUTPUT_DIR": str(tmp_path / "dist"),
                    "TMAPI_STATS_FILE": str(tmp_path / "dist" / "stats-%(worker)s.json"),
                    "LOG_LEVEL": "DEBUG",
                    "RETRY_TIMES": "0",
                }
                sargs = [arg for k, v in distributed.items() for arg in ("-s", f"{k}={v}")]
                seeded = scrapy(["seed", str(seeds), *sargs], sandbox.base_url, TOKEN, stderr=-1)
                out, err = seeded.communicate(timeout=60)
                assert seeded.returncode == 0, err
                worker = scrapy(
                    ["crawl", "image_search", "-o", str(tmp_path / "dist" / "products.jsonl"), *sargs],
                    sandbox.base_url,
                    TOKEN,
                    stderr=-1,
                )
                wout, werr = worker.communicate(timeout=120)
                assert worker.returncode == 0, werr[-2000:]
                outputs += [out, err, wout, werr]
                haystacks["redis"] = redis_dump(redis_server)
            failures = (tmp_path / "dist" / "products.failures.jsonl").read_text()
            assert failures.count("[redacted]") >= len(DENIED)
            haystacks.update({str(p): p.read_bytes() for p in (tmp_path / "dist").rglob("*") if p.is_file()})
    haystacks.update({f"process output {i}": text.encode() for i, text in enumerate(outputs)})
    forms = needles(TOKEN)
    hits = [(where, name) for where, data in haystacks.items() for name, needle in forms.items() if needle in data]
    assert hits == []
