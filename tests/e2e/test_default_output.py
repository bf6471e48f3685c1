"""Without -O/-o: the default feed, its failures feed and its summary share one file stem,
with the crawl's start in the same UTC form as the summary's times (`...T10-09-41Z`, not
Scrapy's `+00-00`)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from tests.crawl_helpers import run_scrapy, scrapy_env
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread


def test_the_default_files_share_a_stem_in_the_summarys_time_form(tmp_path: Path) -> None:
    out = tmp_path / "output"
    with SandboxThread(SandboxConfig()) as sandbox:
        proc = run_scrapy(
            [
                *("crawl", "image_search", "--nolog"),
                *("-a", "urls=https://cbu01.alicdn.com/img/ibank/default-out/total-25.jpg"),
                *("-s", f"TMAPI_OUTPUT_DIR={out}", "-s", f"TMAPI_CACHE_DIR={tmp_path / 'store'}"),
            ],
            scrapy_env(sandbox.base_url),
            timeout=60,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = sorted(p.name for p in out.iterdir())
    stems = {re.sub(r"\.(failures\.jsonl|summary\.json|jsonl)$", "", n) for n in names}
    assert len(stems) == 1, names
    stem = stems.pop()
    assert re.fullmatch(r"image_search-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ", stem), stem
    assert names == sorted(f"{stem}{suffix}" for suffix in (".jsonl", ".failures.jsonl", ".summary.json"))
    assert len((out / f"{stem}.jsonl").read_text().splitlines()) == 25
    summary = json.loads((out / f"{stem}.summary.json").read_text())
    started = datetime.fromisoformat(summary["started_at"])
    named = datetime.strptime(stem.removeprefix("image_search-"), "%Y-%m-%dT%H-%M-%SZ").replace(tzinfo=started.tzinfo)
    assert abs((started - named).total_seconds()) <= 5
