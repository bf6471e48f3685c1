"""Fault soak: the same seed list crawled fault-free and with every injected fault.

    .venv/bin/python benchmarks/fault_soak.py --pages 2000 --fault-rate 0.1
    .venv/bin/python benchmarks/fault_soak.py --pages 2000 --fault-rate 0.1 --workers 3 --kills 2

Both runs are real `scrapy crawl image_search` subprocesses against a local sandbox.
The fault-free run defines what must be delivered; the faulty run must deliver all of
it, with no duplicates, for no more paid calls than the fault-free run plus the retries
the faults forced. The sandbox's own call count is the ground truth for paid calls
(Twisted's connection pool silently re-sends a GET once when a reused connection drops
before answering: the sandbox sees that call, Scrapy's stats do not).

With `--workers N` the faulty run is a distributed job instead: a private redis-server,
the list pushed with `scrapy seed`, N `scrapy crawl` workers with per-worker feeds, and
`--kills K` times a worker holding leases is killed with SIGKILL and a replacement
started (so N keep working). The feeds are merged with `tmapi_spiders.distributed.merge`
and compared with the fault-free single-process run.
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

from tests.redis_server import RedisServer  # noqa: E402
from tmapi_spiders.distributed.job import Job  # noqa: E402
from tmapi_spiders.distributed.keys import JobKeys  # noqa: E402
from tmapi_spiders.distributed.merge import merge  # noqa: E402
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread  # noqa: E402
from tmapi_spiders.sandbox.faults import FAULT_KINDS  # noqa: E402

PAGE_SIZE = 20
TOKEN = "soak-token-0123456789"
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


class _VersusClean:
    """The comparisons both soaks make with the fault-free run `clean` (a Run): the
    subclass names the records it delivered (`_records`) and its sandbox stats (`_sandbox`)."""

    clean: Run

    @property
    def _records(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    @property
    def _sandbox(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def delivered(self) -> set[tuple[str, Any]]:
        return {(p["query_image_url"], p["item_id"]) for p in self._records}

    @property
    def missing(self) -> set[tuple[str, Any]]:
        return set(self.clean.keys) - self.delivered

    @property
    def unexpected(self) -> set[tuple[str, Any]]:
        return self.delivered - set(self.clean.keys)

    @property
    def duplicates(self) -> int:
        return len(self._records) - len(self.delivered)

    @property
    def changed(self) -> int:
        """Records delivered with different content than the fault-free run's."""
        clean = {(p["query_image_url"], p["item_id"]): _stable(p) for p in self.clean.products}
        return sum(1 for p in self._records if clean.get((p["query_image_url"], p["item_id"])) != _stable(p))

    @property
    def faults(self) -> dict[str, int]:
        return dict(self._sandbox.get("faults", {}))

    @property
    def clean_calls(self) -> int:
        return int(self.clean.sandbox["total_calls"])

    @property
    def clean_ok(self) -> bool:
        """The fault-free run itself went well (what the other run is measured against)."""
        return (
            self.clean.returncode == 0 and not self.clean.failures and self.clean.stats.get("log_count/ERROR", 0) == 0
        )


@dataclass
class SoakResult(_VersusClean):
    clean: Run
    faulty: Run
    expected: set[tuple[str, Any]] = field(default_factory=set)

    @property
    def _records(self) -> list[dict[str, Any]]:
        return self.faulty.products

    @property
    def _sandbox(self) -> dict[str, Any]:
        return self.faulty.sandbox

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
            self.clean_ok
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


def write_seeds(workdir: Path, pages: int) -> Path:
    """`workdir/seeds.txt` with `seed_lines(pages)` (both soaks crawl this list)."""
    workdir.mkdir(parents=True, exist_ok=True)
    seeds_file = workdir / "seeds.txt"
    seeds_file.write_text("\n".join(seed_lines(pages)) + "\n", encoding="utf-8")
    return seeds_file


def faulty_sandbox(fault_rate: float, timeout: float, seed: int, latency: float, **extra: Any) -> SandboxConfig:
    """The sandbox of the faulty run: every fault kind at `fault_rate`, slow ones 1.5x the timeout."""
    return SandboxConfig(
        tokens=(TOKEN,),
        latency=latency,
        fault_rate=fault_rate,
        fault_kinds=FAULT_KINDS,
        slow_seconds=timeout * 1.5,
        seed=seed,
        **extra,
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def scrapy_stats(path: Path) -> dict[str, int]:
    """The integer stats of a crawl, from the JSON file TMAPI_STATS_FILE wrote ({}: a crawl
    killed before it could write one)."""
    if not path.exists():
        return {}
    stats = json.loads(path.read_text(encoding="utf-8"))
    return {k: v for k, v in stats.items() if isinstance(v, int) and not isinstance(v, bool)}


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
        "TMAPI_STATS_FILE": workdir / f"{name}.stats.json",
        # An answer store of its own: each run pays for its pages (another run's answers,
        # from a sandbox that got the same port, would make it replay them instead).
        "TMAPI_CACHE_DIR": workdir / f"{name}-answers",
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
        scrapy_stats(workdir / f"{name}.stats.json"),
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
    seeds_file = write_seeds(workdir, pages)
    clean = one_run(workdir, seeds_file, "clean", SandboxConfig(tokens=(TOKEN,), latency=latency), timeout)
    faulty_config = faulty_sandbox(fault_rate, timeout, seed, latency)
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


# -- distributed: N workers sharing one Redis job, some of them killed with SIGKILL ------------------------------

JOB = "soak"
_ERROR_LINE = re.compile(r"^\S+ \S+ \[[^\]]+\] ERROR: ", re.M)
_TOKEN_PARAMS = {"apiToken", "apikey"}


@dataclass
class Kill:
    """One SIGKILL: when, whom, and the leases it left in Redis (what may be redone)."""

    worker: str
    at_pages: int
    request_leases: int
    seed_leases: int


@dataclass
class DistributedRun:
    """A distributed crawl's outcome: every worker's feed, the merge, the sandbox, Redis."""

    codes: dict[str, int]
    raw: list[dict[str, Any]]
    merged: list[dict[str, Any]]
    unreadable_lines: int
    failures: list[dict[str, Any]]
    stats: dict[str, int]
    sandbox: dict[str, Any]
    calls: list[dict[str, Any]]
    kills: list[Kill]
    error_lines: int
    job_left: dict[str, int]
    seconds: float
    log_tail: str = ""


@dataclass
class DistributedSoakResult(_VersusClean):
    clean: Run
    dist: DistributedRun
    kills_wanted: int

    @property
    def _records(self) -> list[dict[str, Any]]:
        return self.dist.merged

    @property
    def _sandbox(self) -> dict[str, Any]:
        return self.dist.sandbox

    @property
    def expected(self) -> set[tuple[str, Any]]:
        return set(self.clean.keys)

    @property
    def raw_duplicates(self) -> int:
        """Records in more than one feed line before the merge (pages a killed worker had not acknowledged)."""
        return len(self.dist.raw) - len({(p["query_image_url"], p["item_id"]) for p in self.dist.raw})

    @property
    def calls(self) -> int:
        return int(self.dist.sandbox["total_calls"])

    @property
    def faulted_calls(self) -> int:
        """Calls that got an injected fault: each forces one retry (a re-send for a dropped connection)."""
        return sum(self.faults.values())

    @property
    def redone(self) -> int:
        """Calls answered without a fault more than once: work a killed worker had not acknowledged."""
        answered = Counter(call_key(call) for call in self.dist.calls if call["fault"] is None)
        return sum(n - 1 for n in answered.values())

    @property
    def orphaned(self) -> int:
        """Request leases the killed workers left: the most that can be paid again."""
        return sum(kill.request_leases for kill in self.dist.kills)

    @property
    def ok(self) -> bool:
        survivors = [code for worker, code in self.dist.codes.items() if worker not in self.killed]
        return (
            self.clean_ok
            and len(self.dist.kills) == self.kills_wanted
            and all(code == -9 for worker, code in self.dist.codes.items() if worker in self.killed)
            and survivors
            and all(code == 0 for code in survivors)
            and self.dist.error_lines == 0
            and not self.dist.failures
            and not self.missing
            and not self.unexpected
            and self.duplicates == 0
            and self.changed == 0
            and self.redone <= self.orphaned
            and self.calls <= self.clean_calls + self.faulted_calls + self.redone
            and not any(self.dist.job_left.values())
        )

    @property
    def killed(self) -> set[str]:
        return {kill.worker for kill in self.dist.kills}


def call_key(call: dict[str, Any]) -> tuple[str, str]:
    params = {k: v for k, v in call["params"].items() if k not in _TOKEN_PARAMS}
    return call["endpoint"], json.dumps(params, sort_keys=True)


def _scrapy_cmd(*args: str, settings: dict[str, Any]) -> list[str]:
    cmd = [sys.executable, "-m", "scrapy", *args]
    for key, value in settings.items():
        cmd += ["-s", f"{key}={value}"]
    return cmd


def _env(base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMAPI_", "REDIS_"))}
    env.update(TMAPI_API_TOKEN=TOKEN, TMAPI_BASE_URL=base_url)
    return env


def worker_settings(redis_url: str, timeout: float, lease: float, concurrency: int) -> dict[str, Any]:
    return {
        "REDIS_URL": redis_url,
        "TMAPI_JOB": JOB,
        "DOWNLOAD_TIMEOUT": timeout,
        "TMAPI_BACKOFF_BASE": 0.02,
        "TMAPI_BACKOFF_MAX": 0.5,
        "RETRY_TIMES": 5,
        "CONCURRENT_REQUESTS": concurrency,
        "TMAPI_REDIS_LEASE": lease,
        "TMAPI_REDIS_ACK_INTERVAL": 0.05,
        "TMAPI_REDIS_POLL_INTERVAL": 0.2,
        "TMAPI_REDIS_SEED_BATCH": 5,
        "MAX_IDLE_TIME_BEFORE_CLOSE": 1,
        "LOG_LEVEL": "INFO",
        "LOGSTATS_INTERVAL": 3600,
    }


def leases_of(job: Job, worker: str) -> Counter[str]:
    """The leases `worker` holds in Redis, by kind (request, seed)."""
    kinds: Counter[str] = Counter()
    for raw in job.server.hvals(job.keys.leases):
        lease = json.loads(raw)
        if lease["w"] == worker:
            kinds[lease["k"]] += 1
    return kinds


def distributed_run(
    workdir: Path,
    seeds_file: Path,
    config: SandboxConfig,
    timeout: float,
    pages: int,
    workers: int = 3,
    kills: int = 2,
    lease: float = 3.0,
    concurrency: int = 4,
    deadline_seconds: float = 1800,
) -> DistributedRun:
    """Seed a job with `scrapy seed`, run `workers` workers, SIGKILL one holding leases `kills` times
    (at evenly spaced shares of `pages`) and start a replacement each time."""
    out = workdir / "dist"
    out.mkdir(parents=True, exist_ok=True)
    with RedisServer() as redis_server, SandboxThread(config) as sandbox:
        settings = worker_settings(redis_url=redis_server.url, timeout=timeout, lease=lease, concurrency=concurrency)
        settings["TMAPI_OUTPUT_DIR"] = workdir / "dist-output"
        env = _env(sandbox.base_url)
        seeded = subprocess.run(
            _scrapy_cmd("seed", str(seeds_file), settings=settings),
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if seeded.returncode != 0:
            raise RuntimeError(f"scrapy seed failed ({seeded.returncode}): {seeded.stderr.strip()[-500:]}")
        job = Job(redis_server.client(), JobKeys.for_job(JOB))
        procs: dict[str, subprocess.Popen[str]] = {}
        logs: dict[str, Path] = {}

        def spawn() -> None:
            name = f"w{len(procs)}"
            logs[name] = out / f"{name}.log"
            feed = str(out / "products-%(worker)s.jsonl")
            worker = {**settings, "TMAPI_WORKER_ID": name, "TMAPI_STATS_FILE": out / f"{name}.stats.json"}
            cmd = _scrapy_cmd("crawl", "image_search", "-o", feed, settings=worker)
            with open(logs[name], "w", encoding="utf-8") as log:
                procs[name] = subprocess.Popen(cmd, cwd=REPO, env=env, text=True, stdout=subprocess.DEVNULL, stderr=log)

        started = time.monotonic()
        for _ in range(workers):
            spawn()
        done: list[Kill] = []
        kill_at = [pages * (i + 1) // (kills + 1) for i in range(kills)]
        while any(proc.poll() is None for proc in procs.values()):
            if time.monotonic() - started > deadline_seconds:
                for proc in procs.values():
                    if proc.poll() is None:
                        proc.kill()
                break
            if len(done) < kills:
                counted = job.status(lease).counters.get("pages", 0)
                if counted >= kill_at[len(done)]:
                    victim = _victim(job, procs)
                    if victim:
                        procs[victim].kill()
                        procs[victim].wait()
                        left = leases_of(job, victim)  # frozen until they expire: exactly what it left
                        done.append(Kill(victim, counted, left["request"], left["seed"]))
                        spawn()
            time.sleep(0.05)
        seconds = time.monotonic() - started
        # A `slow` call is recorded when its sleep ends, which may be after the crawl.
        time.sleep(config.slow_seconds + 0.2 if config.fault_rate and "slow" in config.fault_kinds else 0.2)
        served = sandbox.stats()
        calls = sandbox.calls()
        (out / "calls.jsonl").write_text("".join(json.dumps(c) + "\n" for c in calls), encoding="utf-8")
        status = job.status(lease)
        job_left = {"seeds": status.seeds_left, "queued": status.queued, "leased": status.in_flight}
    feeds = sorted(p for p in out.glob("products-*.jsonl") if ".failures." not in p.name)
    raw, unreadable = [], 0
    for path in feeds:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    raw.append(json.loads(line))
                except ValueError:
                    unreadable += 1
    merged = [json.loads(line) for line in merge([str(p) for p in feeds])]
    failures = [r for p in out.glob("products-*.failures.jsonl") for r in read_jsonl(p)]
    stats: Counter[str] = Counter()
    text = {name: log.read_text(encoding="utf-8") for name, log in logs.items()}
    for name in logs:
        stats.update(scrapy_stats(out / f"{name}.stats.json"))
    return DistributedRun(
        codes={name: int(proc.returncode) for name, proc in procs.items()},
        raw=raw,
        merged=merged,
        unreadable_lines=unreadable,
        failures=failures,
        stats=dict(stats),
        sandbox=served,
        calls=calls,
        kills=done,
        error_lines=sum(len(_ERROR_LINE.findall(t)) for t in text.values()),
        job_left=job_left,
        seconds=seconds,
        log_tail="\n".join(f"--- {name}\n{t[-1500:]}" for name, t in text.items()),
    )


def _victim(job: Job, procs: dict[str, subprocess.Popen[str]]) -> str | None:
    """A running worker that holds request leases (so the kill costs it work in progress)."""
    for name, proc in procs.items():
        if proc.poll() is None and leases_of(job, name)["request"]:
            return name
    return None


def run_distributed_soak(
    workdir: Path,
    pages: int,
    fault_rate: float = 0.1,
    timeout: float = 1.0,
    seed: int = 0,
    latency: float = 0.0,
    workers: int = 3,
    kills: int = 2,
    lease: float = 3.0,
    concurrency: int = 4,
    clean: Run | None = None,
) -> DistributedSoakResult:
    """The fault-free single-process run, then the same list as a faulty distributed job with kills."""
    seeds_file = write_seeds(workdir, pages)
    if clean is None:
        clean = one_run(workdir, seeds_file, "clean", SandboxConfig(tokens=(TOKEN,)), timeout)
    faulty_config = faulty_sandbox(fault_rate, timeout, seed, latency, max_call_records=10 * pages + 10_000)
    total_pages = clean.stats.get("tmapi/pages", pages)
    dist = distributed_run(workdir, seeds_file, faulty_config, timeout, total_pages, workers, kills, lease, concurrency)
    return DistributedSoakResult(clean, dist, kills)


def distributed_table(result: DistributedSoakResult) -> str:
    clean, dist = result.clean, result.dist
    workers = len(dist.codes) - len(dist.kills)
    rows: list[tuple[str, Any]] = [
        ("pages (fault-free single-process run)", clean.stats.get("tmapi/pages", 0)),
        ("workers (at once) / processes started", f"{workers} / {len(dist.codes)}"),
    ]
    for number, kill in enumerate(dist.kills, 1):
        rows.append(
            (
                f"kill -9 #{number}: worker, at page, leases left",
                f"{kill.worker} @{kill.at_pages}: {kill.request_leases}r+{kill.seed_leases}s",
            )
        )
    faults = Counter(result.faults)
    for kind in FAULT_KINDS:
        rows.append((f"faults injected: {kind}", faults.get(kind, 0)))
    killed = result.killed
    rows += [
        ("faults injected: total", result.faulted_calls),
        ("retries by Scrapy, surviving workers", dist.stats.get("retry/count", 0)),
        ("items expected (fault-free run)", len(result.expected)),
        ("items delivered (after merge)", len(result.delivered)),
        ("items missing", len(result.missing)),
        ("items not in the fault-free run", len(result.unexpected)),
        ("items with changed content", result.changed),
        ("duplicates in the raw union of feeds", result.raw_duplicates),
        ("unreadable (cut) feed lines", dist.unreadable_lines),
        ("duplicates after merge", result.duplicates),
        ("failure records / ERROR log lines", f"{len(dist.failures)} / {dist.error_lines}"),
        ("paid calls, fault-free run (sandbox)", result.clean_calls),
        ("paid calls, distributed faulty run", result.calls),
        ("calls redone after kills", result.redone),
        ("request leases the kills left (bound)", result.orphaned),
        ("fault-free + faults + redone", result.clean_calls + result.faulted_calls + result.redone),
        ("job left in Redis (seeds/queued/leased)", "/".join(str(v) for v in dist.job_left.values())),
        ("exit codes, killed", " ".join(str(c) for w, c in dist.codes.items() if w in killed) or "-"),
        ("exit codes, others", " ".join(str(c) for w, c in dist.codes.items() if w not in killed)),
        ("seconds, fault-free / distributed", f"{clean.seconds:.1f} / {dist.seconds:.1f}"),
        ("verdict", "PASS" if result.ok else "FAIL"),
    ]
    return _render(rows)


def _render(rows: list[tuple[str, Any]]) -> str:
    width = max(len(label) for label, _ in rows)
    value_width = max(13, *(len(str(value)) for _, value in rows))
    lines = [f"| {'measure':<{width}} | {'value':>{value_width}} |", f"|{'-' * (width + 2)}|{'-' * (value_width + 2)}|"]
    lines += [f"| {label:<{width}} | {value!s:>{value_width}} |" for label, value in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=2000, help="pages to crawl (default %(default)s)")
    parser.add_argument("--fault-rate", type=float, default=0.1, help="share of calls failing (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=1.0, help="DOWNLOAD_TIMEOUT; slow faults sleep 1.5x this")
    parser.add_argument("--seed", type=int, default=0, help="sandbox fault seed (default %(default)s)")
    parser.add_argument("--latency", type=float, default=0.0, help="sandbox latency per call in seconds")
    parser.add_argument("--workdir", default="/tmp/tmapi-fault-soak", help="where feeds are written")
    parser.add_argument("--workers", type=int, default=0, help="run the faulty crawl as a job of N Redis workers")
    parser.add_argument("--kills", type=int, default=2, help="with --workers: SIGKILL a worker this many times")
    parser.add_argument("--lease", type=float, default=3.0, help="with --workers: TMAPI_REDIS_LEASE in seconds")
    parser.add_argument("--concurrency", type=int, default=4, help="with --workers: CONCURRENT_REQUESTS per worker")
    args = parser.parse_args(argv)
    if args.pages < 1 or not 0 <= args.fault_rate <= 1 or args.timeout <= 0:
        parser.error("--pages must be 1 or more, --fault-rate from 0 to 1, --timeout above 0")
    if args.workers < 0 or args.kills < 0 or args.lease <= 0 or args.concurrency < 1:
        parser.error("--workers and --kills must be 0 or more, --lease above 0, --concurrency 1 or more")
    workdir = Path(args.workdir)
    if args.workers:
        dist = run_distributed_soak(
            workdir,
            args.pages,
            args.fault_rate,
            args.timeout,
            args.seed,
            args.latency,
            args.workers,
            args.kills,
            args.lease,
            args.concurrency,
        )
        print(distributed_table(dist))
        if not dist.ok:
            print(dist.dist.log_tail, file=sys.stderr)
        return 0 if dist.ok else 1
    result = run_soak(workdir, args.pages, args.fault_rate, args.timeout, args.seed, args.latency)
    print(table(result))
    if result.faulty.returncode:
        print(result.faulty.stderr[-3000:], file=sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
