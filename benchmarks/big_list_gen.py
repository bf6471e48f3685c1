"""Seed lists for benchmarks/big_lists.py: a large list as a catalogue exports it.

Most lines are distinct images (a third hosted by Alibaba, searched at once; the rest
converted first); 30 % repeat an earlier image in another spelling (upper-case host,
a default port, a fragment), which the crawl searches once; about 1 % are hostile
(internal addresses, spaces, control bytes, no scheme, over-long), which it skips.
Deterministic for a given size, so two runs read the same list.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

HOSTILE = (
    "http://127.0.0.1/a.jpg",
    "http://localhost/x.png",
    "ftp://example.com/a.jpg",
    "https://exa mple.com/a.jpg",
    "not a url",
    "https://\x01bad.example.com/a.jpg",
    "http://10.0.0.7/photo.jpg",
    "https://" + "a" * 5000 + ".example.com/x.jpg",
)


def image(i: int) -> str:
    if i % 3 == 0:
        return f"https://cbu01.alicdn.com/img/big/{i}/total-3.jpg"
    return f"https://shop{i % 97}.example.com/p/{i}.jpg?total=3"


def variant(url: str, rng: random.Random) -> str:
    scheme, rest = url.split("://", 1)
    host, _, path = rest.partition("/")
    pick = rng.randrange(3)
    if pick == 0:
        return f"{scheme.upper()}://{host.upper()}/{path}"
    if pick == 1:
        return f"{scheme}://{host}:{443 if scheme == 'https' else 80}/{path}"
    return f"{url}#view"


def urls(lines: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    distinct = 0
    for _ in range(lines):
        roll = rng.random()
        if roll < 0.01:
            out.append(rng.choice(HOSTILE))
        elif roll < 0.31 and distinct:
            out.append(variant(image(rng.randrange(distinct)), rng))
        else:
            out.append(image(distinct))
            distinct += 1
    return out


def write_text(path: Path, lines: int) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        f.write("# catalogue export\n")
        for url in urls(lines):
            f.write(url + "\n")
    return path


def write_csv(path: Path, lines: int) -> Path:
    """The same list as a catalogue CSV: an id, the image URL, a title."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["sku", "image_url", "title"])
        for n, url in enumerate(urls(lines)):
            writer.writerow([f"SKU-{n}", url, f"product {n}, blue"])
    return path
