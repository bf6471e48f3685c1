"""Fault soak: the same seed list crawled fault-free and with every injected fault.

    .venv/bin/python benchmarks/fault_soak.py --pages 2000 --fault-rate 0.1

Both runs are real `scrapy crawl image_search` subprocesses against a local sandbox.
The fault-free run defines what must be delivered; the faulty run must deliver all of
it, with no duplicates, for no more paid calls than the fault-free run plus the retries
the faults forced. The sandbox's own call count is the ground truth for paid calls
(Twisted's connection pool silently re-sends a GET once when a reused connection drops
before answering: the sandbox sees that call, Scrapy's stats do not).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tmapi_spiders.sandbox import SandboxConfig, SandboxThread  # noqa: E402
from tmapi_spiders.sandbox.faults import FAULT_KINDS  # noqa: E402

PAGE_SIZE = 20
TOKEN = "soak-token-0123456789"
_STAT_RE = re.compile(r"^\s*[{]?'([^']+)': (\d+)[,}]?$", re.M)
# Fields that legitimately differ between two runs of the same list.
VOLATILE = ("crawled_at",)


@dataclass
class Run:
    """One crawl's outcome as seen by the feeds, Scrapy's stats and the sandbox."""

    returncode: int
    products: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    stats: dict[str, int]
    sandbox: dict[str, Any]
    seconds: float
    stderr: str = ""

    @property
    def keys(self) -> list[tuple[str, Any]]:
        return [(p["query_image_url"], p["item_id"]) for p in self.products]


@dataclass
class SoakResult:
    clean: Run
    faulty: Run
    expected: set[tuple[str, Any]] = field(default_factory=set)

    @property
    def delivered(self) -> set[tuple[str, Any]]:
        return set(self.faulty.keys)

    @property
    def missing(self) -> set[tuple[str, Any]]:
        return set(self.clean.keys) - self.delivered

    @property
    def unexpected(self) -> set[tuple[str, Any]]:
        return self.delivered - set(self.clean.keys)

    @property
    def duplicates(self) -> int:
        return len(self.faulty.keys) - len(self.delivered)

    @property
    def changed(self) -> int:
        """Records delivered with different content than the fault-free run's."""
        clean = {(p["query_image_url"], p["item_id"]): _stable(p) for p in self.clean.products}
        return sum(1 for p in self.faulty.products if clean.get((p["query_image_url"], p["item_id"])) != _stable(p))

    @property
    def faults(self) -> dict[str, int]:
        return dict(self.faulty.sandbox.get("faults", {}))

    @property
    def clean_calls(self) -> int:
        return int(self.clean.sandbox["total_calls"])

    @property
    def faulty_calls(self) -> int:
        return int(self.faulty.sandbox["total_calls"])

    @property
    def retries(self) -> int:
        """Retries Scrapy made plus the re-sends Twisted's pool made on dropped connections."""
        scrapy_retries = self.faulty.stats.get("retry/count", 0)
        hidden = self.faulty_calls - self.faulty.stats.get("tmapi/paid_calls", 0)
        return scrapy_retries + max(hidden, 0)

    @property
    def ok(self) -> bool:
        return (
            self.clean.returncode == 0
            and not self.clean.failures
            and self.clean.stats.get("log_count/ERROR", 0) == 0
            and self.faulty.stats.get("log_count/ERROR", 0) == 0
            and self.faulty.returncode == 0
            and not self.missing
            and not self.unexpected
            and self.duplicates == 0
            and self.changed == 0
            and not self.faulty.failures
            and self.faulty_calls <= self.clean_calls + self.retries
        )


def _stable(record: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in record.items() if k not in VOLATILE}, sort_keys=True)


def seed_lines(pages: int, images: int | None = None) -> list[str]:
    """Enough images for `pages` pages: a quarter of them need conversion first.

    Each image holds 200 items (10 pages of 20) but every fourth holds 190, so its last
    page is short."""
    images = images or max(1, round(pages / 10))
    lines = []
    for i in range(images):
        total = 190 if i % 4 == 3 else 200
        if i % 4 == 1:
            lines.append(f"https://images.example-shop.com/soak/{i}.jpg?total={total}")
        else:
            lines.append(f"https://cbu01.alicdn.com/img/ibank/soak-{i}.jpg?total={total}")
    return lines


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def scrapy_stats(stderr: str) -> dict[str, int]:
    """The integer stats of Scrapy's closing stats dump."""
    _, _, dump = stderr.rpartition("Dumping Scrapy stats:")
    return {key: int(value) for key, value in _STAT_RE.findall(dump)}


def crawl(
    workdir: Path,
    base_url: str,
    seeds_file: Path,
    name: str,
    timeout: float,
    settings: dict[str, Any] | None = None,
) -> tuple[subprocess.CompletedProcess[str], Path, float]:
    out = workdir / f"{name}.jsonl"
    merged: dict[str, Any] = {
        "DOWNLOAD_TIMEOUT": timeout,
        "TMAPI_BACKOFF_BASE": 0.02,
        "TMAPI_BACKOFF_MAX": 0.5,
        "RETRY_TIMES": 5,
        "TMAPI_OUTPUT_DIR": workdir / "output",
        "LOG_LEVEL": "INFO",
        "LOGSTATS_INTERVAL": 3600,
    }
    merged.update(settings or {})
    cmd = [sys.executable, "-m", "scrapy", "crawl", "image_search", "-a", f"urls_file={seeds_file}", "-O", str(out)]
    for key, value in merged.items():
        cmd += ["-s", f"{key}={value}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMAPI_")}
    env.update(TMAPI_API_TOKEN=TOKEN, TMAPI_BASE_URL=base_url)
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    (workdir / f"{name}.log").write_text(proc.stderr, encoding="utf-8")
    return proc, out, time.monotonic() - started


def one_run(workdir: Path, seeds_file: Path, name: str, config: SandboxConfig, timeout: float) -> Run:
    with SandboxThread(config) as sandbox:
        proc, out, seconds = crawl(workdir, sandbox.base_url, seeds_file, name, timeout)
        # A `slow` call is recorded when its sleep ends, which may be after the crawl.
        time.sleep(config.slow_seconds + 0.2 if config.fault_rate and "slow" in config.fault_kinds else 0)
        stats = sandbox.stats()
    return Run(
        proc.returncode,
        read_jsonl(out),
        read_jsonl(out.with_name(f"{name}.failures.jsonl")),
        scrapy_stats(proc.stderr),
        stats,
        seconds,
        proc.stderr,
    )


def run_soak(
    workdir: Path,
    pages: int,
    fault_rate: float = 0.1,
    timeout: float = 1.0,
    seed: int = 0,
    latency: float = 0.0,
) -> SoakResult:
    """Crawl the same list fault-free, then with `fault_rate` of calls failing in every way."""
    workdir.mkdir(parents=True, exist_ok=True)
    seeds_file = workdir / "seeds.txt"
    seeds_file.write_text("\n".join(seed_lines(pages)) + "\n", encoding="utf-8")
    tokens = (TOKEN,)
    clean = one_run(workdir, seeds_file, "clean", SandboxConfig(tokens=tokens, latency=latency), timeout)
    faulty_config = SandboxConfig(
        tokens=tokens,
        latency=latency,
        fault_rate=fault_rate,
        fault_kinds=FAULT_KINDS,
        slow_seconds=timeout * 1.5,
        seed=seed,
    )
    faulty = one_run(workdir, seeds_file, "faulty", faulty_config, timeout)
    return SoakResult(clean, faulty, set(clean.keys))


def table(result: SoakResult) -> str:
    clean, faulty = result.clean, result.faulty
    rows: list[tuple[str, Any]] = [("pages (fault-free run)", clean.stats.get("tmapi/pages", 0))]
    faults = Counter(result.faults)
    for kind in FAULT_KINDS:
        rows.append((f"faults injected: {kind}", faults.get(kind, 0)))
    rows += [
        ("faults injected: total", sum(faults.values())),
        ("retries by Scrapy (retry/count)", faulty.stats.get("retry/count", 0)),
        ("re-sends by Twisted's pool (dropped connections)", result.retries - faulty.stats.get("retry/count", 0)),
        ("retries: total", result.retries),
        ("items expected (fault-free run)", len(result.expected)),
        ("items delivered (faulty run)", len(result.delivered)),
        ("items missing", len(result.missing)),
        ("items not in the fault-free run", len(result.unexpected)),
        ("items with changed content", result.changed),
        ("duplicates", result.duplicates),
        ("failure records, fault-free / faulty", f"{len(clean.failures)} / {len(faulty.failures)}"),
        (
            "ERROR log lines, fault-free / faulty",
            f"{clean.stats.get('log_count/ERROR', 0)} / {faulty.stats.get('log_count/ERROR', 0)}",
        ),
        ("paid calls, fault-free run (sandbox)", result.clean_calls),
        ("paid calls, faulty run (sandbox)", result.faulty_calls),
        ("fault-free + retries", result.clean_calls + result.retries),
        ("seconds, fault-free / faulty", f"{clean.seconds:.1f} / {faulty.seconds:.1f}"),
        ("exit codes, fault-free / faulty", f"{clean.returncode} / {faulty.returncode}"),
        ("verdict", "PASS" if result.ok else "FAIL"),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"| {'measure':<{width}} | {'value':>13} |", f"|{'-' * (width + 2)}|{'-' * 15}|"]
    lines += [f"| {label:<{width}} | {value!s:>13} |" for label, value in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=2000, help="pages to crawl (default %(default)s)")
    parser.add_argument("--fault-rate", type=float, default=0.1, help="share of calls failing (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=1.0, help="DOWNLOAD_TIMEOUT; slow faults sleep 1.5x this")
    parser.add_argument("--seed", type=int, default=0, help="sandbox fault seed (default %(default)s)")
    parser.add_argument("--latency", type=float, default=0.0, help="sandbox latency per call in seconds")
    parser.add_argument("--workdir", default="/tmp/tmapi-fault-soak", help="where feeds are written")
    args = parser.parse_args(argv)
    if args.pages < 1 or not 0 <= args.fault_rate <= 1 or args.timeout <= 0:
        parser.error("--pages must be 1 or more, --fault-rate from 0 to 1, --timeout above 0")
    result = run_soak(Path(args.workdir), args.pages, args.fault_rate, args.timeout, args.seed, args.latency)
    print(table(result))
    if result.faulty.returncode:
        print(result.faulty.stderr[-3000:], file=sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
