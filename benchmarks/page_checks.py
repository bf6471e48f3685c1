"""What each per-page check costs alone, in instructions (valgrind callgrind), on one sandbox page.

    .venv/bin/python benchmarks/page_checks.py

Fetches one 20-record page from the sandbox, then for each check runs a child Python under
callgrind twice, calling the check once and 201 times: the difference / 200 is one call's
instructions, start-up taken out. The checks are the crawl's own functions on the same body,
so a change to one of them shows here beside the others. Needs valgrind.
"""

from __future__ import annotations

import concurrent.futures
import re
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.throughput import PY, TOKEN, Sandbox, images, page_list  # noqa: E402

CHECKS = {
    "parse_json (19-digit guard + orjson.loads)": "envelope.parse_json(body)",
    "the 19-digit guard": "envelope._LONG_DIGITS not in body.translate(envelope._DIGITS_TO_ZERO)",
    "orjson.loads": "orjson.loads(body)",
    "the token scan (Redactor.found_in_bytes)": "redactor.found_in_bytes(body)",
    "invalid_reason, 20 records": "[schema.invalid_reason(r) for r in records]",
    "the depth screen, 20 records": "[schema._may_be_too_deep(r) for r in records]",
    "pydantic-core, 20 records": "[schema._VALIDATE(r) for r in records]",
    "orjson.dumps, 20 records": "[orjson.dumps(r) for r in records]",
    "the Python walk (too_deep), 20 records": "[schema.too_deep(r) for r in records]",
}
CHILD = """
import sys
sys.path.insert(0, {repo!r})
import orjson
from tmapi_spiders.api import envelope, schema
from tmapi_spiders.api.redact import Redactor
body = open({body!r}, "rb").read()
redactor = Redactor([{token!r}])
records = [dict(item, query_image_url="https://x/y.jpg", page=1, rank=i)
           for i, item in enumerate(orjson.loads(body)["data"]["items"])]
for _ in range({n}):
    {check}
"""


def instructions(script: str) -> int:
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", PY, "-c", script],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(re.search(r"Collected : (\d+)", proc.stderr).group(1))  # type: ignore[union-attr]


def per_call(body: Path, check: str) -> float:
    one, many = (CHILD.format(repo=str(REPO), body=str(body), token=TOKEN, n=n, check=check) for n in (1, 201))
    return (instructions(many) - instructions(one)) / 200


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Sandbox() as sandbox:
        params = urllib.parse.urlencode({**page_list(images("checks", 1, 400), 400)[3], "apiToken": TOKEN})
        body = Path(tmp) / "page.json"
        body.write_bytes(urllib.request.urlopen(f"{sandbox.url}/1688/global/search/image?{params}").read())
        print(f"one sandbox page of {body.stat().st_size:,} bytes, 20 records; per call:")
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            costs = dict(zip(CHECKS, pool.map(lambda c: per_call(body, c), CHECKS.values()), strict=True))
    print("| check, one page | instructions |\n| --- | --- |")
    for name, cost in costs.items():
        print(f"| {name} | {cost / 1e6:.2f} M |")


if __name__ == "__main__":
    main()
