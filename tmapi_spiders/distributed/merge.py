"""`python -m tmapi_spiders.distributed.merge out/products-*.jsonl > products.jsonl`

Joins the workers' feeds. After a `kill -9` the dead worker's unacknowledged requests
are done again elsewhere, so a record can be in two feeds: the first one per image,
query and item is kept. A truncated last line (the kill hit mid-write) is skipped.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO


def record_key(record: dict[str, Any]) -> str:
    return json.dumps(
        [
            record.get("query_image_url"),
            record.get("language"),
            record.get("sort"),
            record.get("filters"),
            record.get("item_id", record.get("stage")),
        ],
        sort_keys=True,
        default=str,
    )


def merge(paths: Iterable[str], skipped: list[str]) -> Iterator[str]:
    seen: set[str] = set()
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    skipped.append(f"{path}:{number}")
                    continue
                key = record_key(record)
                if key in seen:
                    continue
                seen.add(key)
                yield line if line.endswith("\n") else line + "\n"


def main(argv: list[str], out: TextIO = sys.stdout) -> int:
    if not argv:
        print("usage: python -m tmapi_spiders.distributed.merge FEED.jsonl... > merged.jsonl", file=sys.stderr)
        return 2
    skipped: list[str] = []
    try:
        for line in merge(argv, skipped):
            out.write(line)
    except OSError as exc:
        print(f"error: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    for where in skipped:
        print(f"warning: unreadable line skipped at {where}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
