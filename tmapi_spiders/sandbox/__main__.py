"""`python -m tmapi_spiders.sandbox --port 8000`: serve a local TMAPI until Ctrl-C/SIGTERM.

The first stdout line is the base URL (flushed at once) so scripts can read it; there
is no access log, so tokens never reach the terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from tmapi_spiders.sandbox.config import (
    AUTH_WAYS,
    COMPRESSIONS,
    DEFAULT_FAULT_KINDS,
    ECHO_ESCAPES,
    RETRY_AFTER_FORMS,
    SandboxConfig,
)
from tmapi_spiders.sandbox.faults import FAULT_KINDS
from tmapi_spiders.sandbox.server import start_sandbox


def build_parser() -> argparse.ArgumentParser:
    d = SandboxConfig()
    p = argparse.ArgumentParser(prog="python -m tmapi_spiders.sandbox", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one (default %(default)s)")
    p.add_argument(
        "--token", dest="tokens", action="append", default=[], help="accepted API token (repeatable; default: sandbox)"
    )
    p.add_argument(
        "--broke-token",
        dest="broke_tokens",
        action="append",
        default=[],
        help="token whose balance is spent: HTTP 439 (repeatable)",
    )
    p.add_argument(
        "--deny-pattern",
        dest="deny_patterns",
        action="append",
        default=[],
        help="regex: converting a matching URL is denied (repeatable)",
    )
    p.add_argument(
        "--unrecognised-pattern",
        dest="unrecognised_patterns",
        action="append",
        default=[],
        help="regex: searching a matching image URL before conversion answers 422 (repeatable)",
    )
    p.add_argument(
        "--convert-timeout-pattern",
        dest="convert_timeout_patterns",
        action="append",
        default=[],
        help="regex: the first conversion of a matching URL times out (repeatable)",
    )
    p.add_argument(
        "--empty-pattern",
        dest="empty_patterns",
        action="append",
        default=[],
        help="regex: the first --empty-times asks of page --empty-page of a matching image answer items: []",
    )
    p.add_argument(
        "--empty-page", type=int, default=d.empty_page, help="the page --empty-pattern empties (default %(default)s)"
    )
    p.add_argument(
        "--empty-times", type=int, default=d.empty_times, help="asks of it answered empty (default %(default)s)"
    )
    p.add_argument(
        "--string-code-pattern",
        dest="string_code_patterns",
        action="append",
        default=[],
        help='regex: a matching image\'s search pages carry "code": "200", a string (repeatable)',
    )
    p.add_argument(
        "--redirect-pattern",
        dest="redirect_patterns",
        action="append",
        default=[],
        help="regex: searching a matching image answers 302, its Location quoting the query and token (repeatable)",
    )
    p.add_argument("--latency", type=float, default=d.latency, help="seconds added to every API call")
    p.add_argument("--jitter", type=float, default=d.jitter, help="plus up to this many seconds, uniformly")
    p.add_argument("--fault-rate", type=float, default=d.fault_rate, help="share of API calls that get a fault, 0..1")
    p.add_argument(
        "--fault-kind",
        dest="fault_kinds",
        action="append",
        default=[],
        help=f"fault to draw from (repeatable or comma-separated): {', '.join(FAULT_KINDS)}; default: all but slow",
    )
    p.add_argument(
        "--slow-seconds",
        type=float,
        default=d.slow_seconds,
        help="latency spike of the slow fault (default %(default)s)",
    )
    p.add_argument("--seed", type=int, default=d.seed, help="seeds fault and jitter decisions (default %(default)s)")
    p.add_argument(
        "--max-concurrency",
        type=int,
        default=d.max_concurrency,
        help="calls in flight beyond this answer 503 (0 = no limit)",
    )
    p.add_argument(
        "--max-qps", type=float, default=d.max_qps, help="calls per second beyond this answer 503 (0 = no limit)"
    )
    p.add_argument(
        "--network-jitter",
        type=float,
        default=d.network_jitter,
        help="each API call reaches the gateway up to this many seconds late, uniformly (default %(default)s)",
    )
    p.add_argument(
        "--rate-limit",
        type=float,
        default=d.rate_limit,
        help="the gateway's rate limit: calls per second beyond this answer 429 (0 = no limit)",
    )
    p.add_argument(
        "--retry-after",
        choices=RETRY_AFTER_FORMS,
        default=d.retry_after,
        help="Retry-After on 429 and 503 answers, as delay-seconds or an HTTP-date (default %(default)s)",
    )
    p.add_argument(
        "--retry-after-seconds",
        type=float,
        default=d.retry_after_seconds,
        help="the distance Retry-After gives (0: until the limit admits a call, at least 1 s)",
    )
    p.add_argument(
        "--repeat-rate", type=float, default=d.repeat_rate, help="share of items on page p>1 repeated from page p-1"
    )
    p.add_argument(
        "--overstate",
        type=float,
        default=d.overstate,
        help="report total_count this fraction larger than the real count",
    )
    p.add_argument(
        "--cache-size", type=int, default=d.cache_size, help="image catalogues kept in memory (default %(default)s)"
    )
    p.add_argument(
        "--max-call-records",
        type=int,
        default=d.max_call_records,
        help="call records kept for /_sandbox/calls (default %(default)s)",
    )
    p.add_argument("--auth", choices=AUTH_WAYS, default=d.auth, help="where the token is read (default %(default)s)")
    p.add_argument(
        "--compress", choices=COMPRESSIONS, default=d.compress, help="answer encoding if accepted (default %(default)s)"
    )
    p.add_argument(
        "--no-chunked", dest="chunked", action="store_false", help="send Content-Length instead of chunked bodies"
    )
    p.add_argument("--echo-errors", action="store_true", help="error answers quote the request's headers and query")
    p.add_argument(
        "--echo-escape", choices=ECHO_ESCAPES, default=d.echo_escape, help="how the echo is escaped in the JSON string"
    )
    p.add_argument(
        "--max-page-size", type=int, default=d.max_page_size, help="the backend's own page size (default %(default)s)"
    )
    p.add_argument("--filter-per-page", type=int, default=d.filter_per_page, help="items dropped from every page")
    p.add_argument("--stuck-after", type=int, default=d.stuck_after, help="pages after this one repeat it (0: never)")
    p.add_argument("--report-total", type=int, default=d.report_total, help="total_count reported (0: the real one)")
    p.add_argument(
        "--day", type=int, default=d.day, help="the catalogue's day: N moves offers by days 1..N (default %(default)s)"
    )
    return p  # fmt: skip


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    kinds = tuple(k.strip() for spec in args.fault_kinds for k in spec.split(",") if k.strip())
    options = {k: v for k, v in vars(args).items() if k not in ("host", "port")}
    options["fault_kinds"] = kinds or DEFAULT_FAULT_KINDS
    return SandboxConfig(**options)


async def serve(config: SandboxConfig, host: str, port: int) -> None:
    running = await start_sandbox(config, host, port)
    print(running.base_url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await running.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        asyncio.run(serve(config, args.host, args.port))
    except OSError as exc:
        print(f"sandbox: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
